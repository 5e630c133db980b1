"""Baselines: accept today's findings, fail only on new ones, report the fixed ones.

An entry is matched by what the finding is about (rule, resource identity, semantic
key: ``auditor.identity``), never by line or list position, so inserting a region,
reordering lists, reformatting, moving a resource to another file or renaming the file
keep findings matched. Matching is one entry for one finding: when the same finding
appears twice (a template copied with its logical id into another file), the entry
goes to the copy in the file it was recorded in and the other copy is new, so a
copied mistake is never absorbed by the original's entry (Checkov #7647).

Version 1 baselines (written before identities were semantic) still load: their
entries are matched by the old position-based fingerprint, with a warning saying how to
rewrite the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from auditor import __version__
from auditor.atomic import write_text_atomic
from auditor.model import Finding, InputError, Notice, Suppression, Target, evolve
from auditor.sources import read_text

BASELINE_VERSION = 2
READABLE_VERSIONS = (1, 2)


def write_baseline(path: Path, findings: Sequence[Finding], targets: Sequence[Target]) -> None:
    """Record every finding (suppressed ones too) as stable, sorted, reviewable JSON."""
    identity = {t.id: t.identity for t in targets}
    entries = sorted(
        (
            {
                "fingerprint": f.fingerprint,
                "rule_id": f.rule_id,
                "resource": identity.get(f.target, f.target),
                "key": f.key,
                "target": f.target,
                "path": f.path,
                "message": f.message,
                "file": f.location.file,
                "line": f.location.span.start_line if f.location.span else None,
            }
            for f in findings
        ),
        # Sorted by meaning, so an edit that moves lines or list entries keeps the order.
        key=lambda e: (e["resource"], e["key"], e["rule_id"], e["fingerprint"]),
    )
    unique = list({e["fingerprint"]: e for e in entries}.values())
    doc = {"version": BASELINE_VERSION, "tool": f"ib-audit {__version__}", "findings": unique}
    write_text_atomic(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


MAX_BASELINE_BYTES = 500_000_000


class Baseline:
    """A loaded baseline: its entries, its format version and where it came from."""

    def __init__(self, source: str, version: int, entries: list[dict[str, Any]]) -> None:
        self.source = source
        self.version = version
        self.entries = entries

    def notices(self) -> list[Notice]:
        if self.version == 1:
            return [
                Notice(
                    "baseline",
                    "version 1 baseline: entries match by list position, so inserting a region makes findings new; "
                    f"rewrite it with --write-baseline {self.source}",
                    input=self.source,
                )
            ]
        return []


def load_baseline(path: Path) -> tuple[Baseline | None, InputError | None]:
    """Read a baseline; an unreadable or foreign file is an error saying how to make one.

    The file is read like any input (a regular file, bounded). Anything but an object
    with a known version and a ``findings`` list (a list, a string, another tool's file)
    is an error, and so is an entry that is not an object with a fingerprint. Entries
    keep only plain values (strings, numbers, null): they flow into every report.
    """
    how = f"write one with: ib-audit scan ... --write-baseline {path}"
    name = str(path)
    text, problem = read_text(path, MAX_BASELINE_BYTES)
    if problem is not None:
        if problem.startswith("cannot read file: no such file") and not path.is_symlink():
            return None, InputError(name, f"baseline file not found ({how})")
        return None, InputError(name, f"cannot read baseline: {problem}")
    try:
        doc = json.loads(text or "")
    except json.JSONDecodeError as exc:
        return None, InputError(name, f"line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}")
    except (ValueError, RecursionError) as exc:
        return None, InputError(name, f"invalid JSON: {exc or 'nested too deeply'}")
    entries = doc.get("findings") if isinstance(doc, dict) else None
    version = doc.get("version") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or isinstance(version, bool) or version not in READABLE_VERSIONS:
        if isinstance(doc, dict) and isinstance(version, int) and version > BASELINE_VERSION:
            return None, InputError(name, f"baseline version {version} is newer than this ib-audit reads ({how})")
        return None, InputError(name, f"not an ib-audit baseline (version 1 or 2 with a findings list; {how})")
    good = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("fingerprint"), str) or not entry["fingerprint"]:
            return None, InputError(name, f"findings[{index}] is not a baseline entry (an object with a fingerprint)")
        good.append({k: v for k, v in entry.items() if _plain(v)})
    return Baseline(name, version, good), None


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, type(None))) and not isinstance(value, bool)


def v1_fingerprint(finding: Finding, target: Target | None) -> str:
    """The fingerprint version 1 baselines recorded: rule, ARN or target id, and list positions."""
    identity = (target.origin.arn if target is not None else None) or finding.target
    return hashlib.sha256(f"{finding.rule_id}\0{identity}\0{finding.path}".encode()).hexdigest()[:32]


def apply_baseline(
    findings: Sequence[Finding], baseline: Baseline, targets: Sequence[Target]
) -> tuple[list[Finding], list[dict[str, Any]]]:
    """Mark findings new or unchanged; return them and the baseline entries now fixed.

    An entry counts as fixed only when its resource (or its file) was audited this
    time: a resource in a file that failed to load has not been shown to be fixed.
    """
    by_id = {t.id: t for t in targets}
    audited = [t for t in targets if t.status == "audited"]

    def match_key(finding: Finding) -> tuple:
        target = by_id.get(finding.target)
        if baseline.version == 1:
            return (v1_fingerprint(finding, target),)
        return (finding.rule_id, target.identity if target is not None else finding.target, finding.key)

    def entry_key(entry: dict[str, Any]) -> tuple:
        if baseline.version == 1 or not isinstance(entry.get("key"), str):
            return (entry["fingerprint"],)
        return (entry.get("rule_id"), entry.get("resource"), entry["key"])

    pending: dict[tuple, list[dict[str, Any]]] = {}
    for entry in baseline.entries:
        pending.setdefault(entry_key(entry), []).append(entry)
    # One entry per finding. First every finding takes an entry recorded in its own file,
    # then the rest take what is left (the resource moved, or the file was renamed).
    matched: dict[int, dict[str, Any]] = {}
    for same_file in (True, False):
        for index, f in enumerate(findings):
            if index in matched:
                continue
            candidates = pending.get(match_key(f)) or pending.get((f.fingerprint,)) or []
            entry = next((e for e in candidates if not same_file or e.get("file") == f.location.file), None)
            if entry is not None:
                candidates.remove(entry)
                matched[index] = entry
    out = []
    for index, f in enumerate(findings):
        if index in matched:
            suppressed = f.suppressed or Suppression("baseline", f"accepted in baseline {baseline.source}")
            out.append(evolve(f, baseline_state="unchanged", suppressed=suppressed))
        else:
            out.append(evolve(f, baseline_state="new"))
    identities = {t.identity for t in audited}
    ids = {t.id for t in audited}
    files = {t.origin.file for t in audited if t.origin.file}
    failed_files = {t.origin.file or t.id for t in targets if t.status == "error"}
    fixed = []
    for entries in pending.values():
        for e in entries:
            if baseline.version == 1:
                shown = e.get("target") in ids
            else:
                in_audited_file = e.get("file") in files and e.get("file") not in failed_files
                shown = e.get("resource") in identities or in_audited_file
            if shown:
                fixed.append(e)
    fixed.sort(key=lambda e: (str(e.get("target")), str(e.get("path")), str(e.get("rule_id"))))
    return out, fixed
