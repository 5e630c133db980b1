"""What a report format is, and the plain data every format is built from."""

from __future__ import annotations

from typing import Any, Protocol, TextIO

from auditor import __version__
from auditor.model import AuditResult, Finding, Location, Notice

JSON_SCHEMA_VERSION = 1


class ReportError(Exception):
    """A report cannot be written for a reason the user can fix; the message says how."""


class Reporter(Protocol):
    name: str
    description: str

    def write(self, result: AuditResult, stream: TextIO, *, color: bool = False) -> None:
        """Write the report for ``result`` to ``stream``."""


def pseudo_path(target) -> str:
    """A stable, relative stand-in path for a live target without a snapshot file."""
    origin = target.origin
    return f"aws/{origin.account or 'unknown-account'}/{origin.region or 'unknown-region'}/{target.name}.json"


def location_dict(loc: Location) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if loc.file is not None:
        out["file"] = loc.file
    if loc.span is not None:
        out.update(
            start_line=loc.span.start_line,
            start_column=loc.span.start_column,
            end_line=loc.span.end_line,
            end_column=loc.span.end_column,
        )
    if loc.arn is not None:
        out["arn"] = loc.arn
    return out


def finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "rule_id": f.rule_id,
        "rule": f.rule,
        "severity": f.severity.label,
        "message": f.message,
        "target": f.target,
        "path": f.path,
        "location": location_dict(f.location),
        "fingerprint": f.fingerprint,
        "key": f.key,
        "suppressed": None if f.suppressed is None else {"kind": f.suppressed.kind, "reason": f.suppressed.reason},
        "baseline_state": f.baseline_state,
    }


def notice_dict(notice: Notice) -> dict[str, Any]:
    """A warning in the JSON report: its kind, message and the place it names."""
    out: dict[str, Any] = {"kind": notice.kind, "message": notice.message}
    if notice.location is not None:
        out["location"] = location_dict(notice.location)
    if notice.input is not None:
        out["input"] = notice.input
    return out


def result_dict(result: AuditResult) -> dict[str, Any]:
    """The JSON report (schema version 1, see DESIGN.md): the machine contract."""
    audited = sum(1 for t in result.targets if t.status == "audited")
    return {
        "version": JSON_SCHEMA_VERSION,
        "tool": {"name": "ib-audit", "version": __version__},
        "summary": {
            "inputs": len(result.targets),
            "audited": audited,
            "errors": len(result.errors),
            "findings": result.counts(),
            "suppressed": result.suppressed_count,
            "fail_on": result.fail_on.label if result.fail_on is not None else "never",
            "failed": result.failed,
            "exit_code": result.exit_code,
        },
        "targets": [
            {"id": t.id, "name": t.name, "status": t.status, "identity": t.identity, "origin": t.origin.as_dict()}
            | ({"error": t.error} if t.error is not None else {})
            for t in result.targets
        ],
        "findings": [finding_dict(f) for f in result.findings],
        "unverified": [
            {"target": u.target, "rule_id": u.rule_id, "path": u.path, "reason": u.reason} for u in result.unverified
        ],
        "errors": [{"input": e.input, "message": e.message} for e in result.errors],
        "warnings": [notice_dict(w) for w in result.warnings],
        "fixed": [dict(e) for e in result.fixed],
        "rules": [
            {"id": s.id, "slug": s.rule.slug, "severity": s.severity.label, "plugin": s.plugin} for s in result.rules
        ],
        "scanned": list(result.scanned),
        "coverage": result.report_options.get("coverage"),
        "sinks": result.report_options.get("sinks"),
    }
