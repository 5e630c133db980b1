"""What a report format is, and the plain data every format is built from."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from auditor import __version__
from auditor.model import AuditResult, Finding, Location, Notice, Unverified
from auditor.patterns import LazyPattern

JSON_SCHEMA_VERSION = 1

# What a value from a configuration, a file name or an API answer must not carry into a
# terminal or a CI log: control characters (escape sequences, carriage returns that
# overwrite a line, newlines that start a new one), Unicode line separators and
# direction overrides, lone surrogates, and GitHub's legacy "##[command]" marker.
_UNSAFE_IN_LOGS = LazyPattern(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]|##\\["
)


def _escaped(match: re.Match) -> str:
    text = match.group()
    if text == "##[":
        return "##\\x5b"
    code = ord(text)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def log_safe(text: str) -> str:
    """``text`` with control characters and log-command markers shown as escapes.

    Whatever the data holds, it stays on its own line and cannot colour, move or erase
    anything, nor start a CI workflow command.
    """
    return _UNSAFE_IN_LOGS.sub(_escaped, str(text))


def log_line(line: str) -> str:
    """A whole output line that cannot begin a GitHub Actions workflow command.

    The runner trims leading blanks and treats a line starting with ``::`` as a command;
    data that lands at the start of a line (a file named ``::error::x.json``) must not.
    """
    stripped = line.lstrip()
    if stripped.startswith("::"):
        return line[: len(line) - len(stripped)] + "\\x3a" + stripped[1:]
    return line


class ReportError(Exception):
    """A report cannot be written for a reason the user can fix; the message says how."""


class Reporter(Protocol):
    """A report format. It may also define ``check()``, called once before anything is
    scanned, raising ``ReportError`` when the report could not be written at all (an
    optional dependency that is not installed)."""

    name: str
    description: str

    def write(self, result: AuditResult, stream: TextIO, *, color: bool = False) -> None:
        """Write the report for ``result`` to ``stream``."""


@dataclass(frozen=True)
class UnverifiedGroup:
    """The could-not-verify entries of one rule for one reason, across configurations."""

    rule_id: str
    reason: str
    entries: tuple[Unverified, ...]

    @property
    def configurations(self) -> int:
        return len({u.target for u in self.entries})


def unverified_groups(unverified: Iterable[Unverified]) -> list[UnverifiedGroup]:
    """Entries grouped by (rule, reason), by rule id and then first appearance.

    One cause (an account the scan cannot read, a permission it lacks) is one group
    however many configurations it stands in front of; the JSON report keeps every entry.
    """
    groups: dict[tuple[str, str], list[Unverified]] = {}
    for u in unverified:
        groups.setdefault((u.rule_id, u.reason), []).append(u)
    ordered = sorted(groups.items(), key=lambda item: item[0][0])  # stable: first appearance within a rule
    return [UnverifiedGroup(rule_id, reason, tuple(entries)) for (rule_id, reason), entries in ordered]


@dataclass(frozen=True)
class TargetTags:
    """A configuration's literal tags as a report may state them: ``common`` holds in
    every scenario of a template; ``branches`` gives each scenario's whole set after
    when it holds, only when they differ (``Tags: {data-class: !If [IsProd, ...]}``)."""

    common: dict[str, str]
    branches: list[tuple[str | None, dict[str, str]]]


def target_tags(target) -> TargetTags:
    """The tags a report may attach to a target's resource (Security Hub's ``Tags``, OCSF's
    ``labels``): only those true in every branch. Automation filters on them, so a tag
    that one branch of a condition sets must not read as the resource's tag."""
    scenarios = target.scenarios if target is not None and len(target.scenarios) > 1 else ()
    configs = [s.config for s in scenarios] or [target.config if target is not None else None]
    sets = [_literal_tags(config) for config in configs]
    common = {k: v for k, v in sets[0].items() if all(other.get(k) == v for other in sets[1:])}
    branches: list[tuple[str | None, dict[str, str]]] = []
    if any(other != sets[0] for other in sets[1:]):
        from auditor.engine import by_branch  # only templates whose branches differ get here

        found = by_branch(((n, tuple(tags.items())) for n, tags in enumerate(sets)), scenarios)
        branches = [(when, dict(items)) for when, items in found]
    return TargetTags(common, branches)


def _literal_tags(config: object) -> dict[str, str]:
    tags = config.get("tags") if isinstance(config, Mapping) else None
    if not isinstance(tags, Mapping):
        return {}
    return {str(k): v for k, v in tags.items() if isinstance(v, str) and str(k)}


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
    } | ({"snippet": {"first_line": f.snippet.first_line, "lines": list(f.snippet.lines)}} if f.snippet else {})


def notice_dict(notice: Notice) -> dict[str, Any]:
    """A warning in the JSON report: its kind, message and the place it names."""
    out: dict[str, Any] = {"kind": notice.kind, "message": notice.message}
    if notice.location is not None:
        out["location"] = location_dict(notice.location)
    if notice.input is not None:
        out["input"] = notice.input
    return out


def result_dict(result: AuditResult, *, findings: bool = True) -> dict[str, Any]:
    """The JSON report (schema version 1, see DESIGN.md): the machine contract.

    With ``findings=False`` the ``findings`` entry is left empty, for a writer that
    streams them one by one.
    """
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
        "findings": [finding_dict(f) for f in result.findings] if findings else [],
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
        # Account-context facts the rules noted: target id -> distribution pointer -> label -> text.
        "facts": {target: {p: dict(labels) for p, labels in notes.items()} for target, notes in result.facts.items()},
    }
