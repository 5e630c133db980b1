"""Baselines: accept today's findings, fail only on new ones, report the fixed ones.

Matching is by fingerprint (rule + resource identity + canonical path), never by line,
so moving or reformatting a resource keeps its findings matched, and a finding in
another file or resource is never absorbed by an old one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from auditor import __version__
from auditor.model import Finding, InputError, Suppression

BASELINE_VERSION = 1


def write_baseline(path: Path, findings: Sequence[Finding]) -> None:
    """Record every finding (suppressed ones too) as stable, sorted, reviewable JSON."""
    entries = sorted(
        (
            {
                "fingerprint": f.fingerprint,
                "rule_id": f.rule_id,
                "target": f.target,
                "path": f.path,
                "message": f.message,
                "file": f.location.file,
                "line": f.location.span.start_line if f.location.span else None,
            }
            for f in findings
        ),
        key=lambda e: (e["target"], e["path"], e["rule_id"], e["fingerprint"]),
    )
    # Drop duplicates (a fingerprint is unique per rule, resource and path).
    unique = list({e["fingerprint"]: e for e in entries}.values())
    doc = {"version": BASELINE_VERSION, "tool": f"ib-audit {__version__}", "findings": unique}
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def load_baseline(path: Path) -> tuple[dict[str, dict[str, Any]], InputError | None]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, InputError(str(path), "baseline file not found")
    except (OSError, UnicodeDecodeError) as exc:
        return {}, InputError(str(path), f"cannot read baseline: {exc}")
    except json.JSONDecodeError as exc:
        return {}, InputError(str(path), f"line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}")
    entries = doc.get("findings") if isinstance(doc, dict) else None
    if doc.get("version") != BASELINE_VERSION or not isinstance(entries, list):
        return {}, InputError(str(path), "not an ib-audit baseline (version 1 with a findings list)")
    good = {e["fingerprint"]: e for e in entries if isinstance(e, dict) and isinstance(e.get("fingerprint"), str)}
    return good, None


def apply_baseline(
    findings: Sequence[Finding], baseline: dict[str, dict[str, Any]], source: str, audited_targets: set[str]
) -> tuple[list[Finding], list[dict[str, Any]]]:
    """Mark findings new or unchanged; return them and the baseline entries now fixed.

    An entry counts as fixed only when its target was audited this time: a target
    that failed to load has not been shown to be fixed.
    """
    out = []
    seen = set()
    for f in findings:
        if f.fingerprint in baseline:
            seen.add(f.fingerprint)
            suppressed = f.suppressed or Suppression("baseline", f"accepted in baseline {source}")
            out.append(replace(f, baseline_state="unchanged", suppressed=suppressed))
        else:
            out.append(replace(f, baseline_state="new"))
    fixed = [e for fp, e in sorted(baseline.items()) if fp not in seen and e.get("target") in audited_targets]
    return out, fixed
