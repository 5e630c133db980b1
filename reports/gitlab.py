"""GitLab Code Quality JSON: findings in the merge request's Code Quality widget.

An array of issues with the fields GitLab documents ("Code Quality report format"):
``description``, ``check_name``, ``fingerprint`` (unique per issue: GitLab keeps one
issue per fingerprint, and compares them between the source and target branch to show
what a merge request introduces or fixes), ``severity`` (``info``, ``minor``, ``major``,
``critical``, ``blocker``), ``location.path`` (relative to the repository) and
``location.lines.begin``. Suppressed and baselined findings are left out: they do not
fail the gate. Live findings without a snapshot file use the SARIF report's stand-in
path ``aws/<account>/<region>/<name>.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from auditor.model import AuditResult, Severity
from auditor.reporting import pseudo_path

SEVERITIES = {
    Severity.CRITICAL: "blocker",
    Severity.HIGH: "critical",
    Severity.MEDIUM: "major",
    Severity.LOW: "minor",
    Severity.INFO: "info",
}


def issues(result: AuditResult) -> list[dict[str, Any]]:
    targets = {t.id: t for t in result.targets}
    out = []
    for f in result.findings:
        if f.suppressed is not None:
            continue
        target = targets.get(f.target)
        if f.location.file:
            path = Path(f.location.file).as_posix()
        else:
            path = pseudo_path(target) if target is not None else f.target
        name = target.name if target is not None else f.target
        out.append(
            {
                "description": f"{f.rule_id} {f.message} (configuration {name})",
                "check_name": f.rule_id,
                "fingerprint": f.fingerprint,
                "severity": SEVERITIES[f.severity],
                "location": {"path": path, "lines": {"begin": f.location.span.start_line if f.location.span else 1}},
                "categories": ["Security"],
                "type": "issue",
            }
        )
    return out


def write(result: AuditResult, stream: TextIO) -> None:
    json.dump(issues(result), stream, indent=2, ensure_ascii=False)
    stream.write("\n")
