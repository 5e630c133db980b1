"""``ib-audit merge``: combine JSON reports of several runs into one result.

Shards, accounts or regions scanned separately come back together here, and any
reporter can be written from the merged result. A target that appears in two inputs
is an error naming both (an overlapping or repeated shard), never counted twice.

A report is data from elsewhere: merge reads only the files it is given (regular files,
bounded) and never a file a report names; the lines the HTML report shows travel inside
the JSON report (``snippet``), and so do the account-context facts the by-resource view
shows (``facts``). Every field is checked before anything of that file
counts: one malformed field is "cannot merge FILE: reason" and none of its targets,
findings or coverage are merged. Shard numbers are bounded by MAX_SHARDS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.engine import RuleSpec
from auditor.model import (
    AuditResult,
    Finding,
    InputError,
    Location,
    Notice,
    Origin,
    Severity,
    Snippet,
    Span,
    Suppression,
    Target,
    Unverified,
)
from auditor.rule import Rule
from auditor.snippets import SNIPPET_MAX_LINES, SNIPPET_MAX_WIDTH
from auditor.sources import read_text

MAX_SHARDS = 1000  # --shard K/N and merged coverage: N at most this
MAX_REPORT_BYTES = 1_000_000_000
MAX_POSITION = 10**9  # lines and columns
RULE_ID = re.compile(r"^[A-Z]+[0-9]+$")
SHARD = re.compile(r"^([0-9]{1,9})/([0-9]{1,9})$")
SUPPRESSION_KINDS = ("tag", "inline", "config", "baseline")
LOCATION_KEYS = {"file", "arn", "start_line", "start_column", "end_line", "end_column"}


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` with 1 <= K <= N <= MAX_SHARDS; ValueError naming the problem otherwise."""
    match = SHARD.match(text.strip())
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)) <= MAX_SHARDS:
        raise ValueError(f"--shard takes K/N with 1 <= K <= N <= {MAX_SHARDS}, got {text!r}")
    return int(match.group(1)), int(match.group(2))


class Malformed(ValueError):
    """A report field that is not what ib-audit writes; the message names it."""


def _stand_in(rule_id: str, slug: str) -> type[Rule]:
    """A rule class for an id whose plugin is not installed where the merge runs."""
    doc = f"{rule_id} ({slug}), from a plugin not installed here.\n\nWhy:\n  Unknown.\n\nExample:\n  -\n\nFix:\n  -\n"
    return type(
        f"Merged{rule_id}",
        (Rule,),
        {
            "__doc__": doc,
            "id": rule_id,
            "slug": slug,
            "severity": Severity.MEDIUM,
            "summary": f"{rule_id} from another installation",
        },
    )


# -- checking one report ---------------------------------------------------------------------------
_KINDS = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), "a number")


def _get(obj: dict, key: str, where: str, kind: type, *, optional: bool = False) -> Any:
    """``obj[key]``, which must be of ``kind`` (or missing or null when ``optional``)."""
    if key not in obj or (optional and obj[key] is None):
        if optional:
            return None
        raise Malformed(f"{where}: missing {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise Malformed(f"{where}.{key}: expected {_KINDS.get(kind, 'a number')}, got {_kind(value)}")
    return value


def _list(obj: dict, key: str, where: str, *, optional: bool = False) -> list:
    return _get(obj, key, where, list, optional=optional) or []


def _objects(obj: dict, key: str, where: str, *, optional: bool = False) -> list[tuple[str, dict]]:
    out = []
    for index, item in enumerate(_list(obj, key, where, optional=optional)):
        if not isinstance(item, dict):
            raise Malformed(f"{key}[{index}]: expected an object, got {_kind(item)}")
        out.append((f"{key}[{index}]", item))
    return out


def _severity(text: str, where: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError:
        raise Malformed(f"{where}: unknown severity {text[:40]!r}") from None


def _position(obj: dict, key: str, where: str) -> int | None:
    value = _get(obj, key, where, int, optional=True)
    if value is not None and not 1 <= value <= MAX_POSITION:
        raise Malformed(f"{where}.{key}: {value} is not a line or column number")
    return value


def _location(d: dict[str, Any], where: str) -> Location:
    unknown = set(d) - LOCATION_KEYS
    if unknown:
        raise Malformed(f"{where}: unknown member {sorted(unknown)[0]!r}")
    start_line = _position(d, "start_line", where)
    span = None
    if start_line is not None:
        span = Span(
            start_line,
            _position(d, "start_column", where) or 1,
            _position(d, "end_line", where) or start_line,
            _position(d, "end_column", where) or 1,
        )
    return Location(
        file=_get(d, "file", where, str, optional=True), span=span, arn=_get(d, "arn", where, str, optional=True)
    )


def _snippet(d: dict[str, Any], where: str) -> Snippet | None:
    raw = _get(d, "snippet", where, dict, optional=True)
    if raw is None:
        return None
    first = _position(raw, "first_line", f"{where}.snippet")
    lines = _list(raw, "lines", f"{where}.snippet")
    if first is None or len(lines) > SNIPPET_MAX_LINES:
        raise Malformed(f"{where}.snippet: expected first_line and at most {SNIPPET_MAX_LINES} lines")
    if not all(isinstance(line, str) and len(line) <= SNIPPET_MAX_WIDTH for line in lines):
        raise Malformed(f"{where}.snippet.lines: expected strings of at most {SNIPPET_MAX_WIDTH} characters")
    return Snippet(first, tuple(lines))


def _facts(doc: dict, targets: set[str]) -> dict[str, dict[str, dict[str, str]]]:
    """The account-context facts rules noted: target id -> JSON Pointer -> label -> text."""
    raw = _get(doc, "facts", "report", dict, optional=True) or {}
    out: dict[str, dict[str, dict[str, str]]] = {}
    for target, notes in raw.items():
        where = f"facts[{target[:200]!r}]"
        if target not in targets:
            raise Malformed(f"{where}: not one of this report's targets")
        if not isinstance(notes, dict):
            raise Malformed(f"{where}: expected an object, got {_kind(notes)}")
        for pointer, labels in notes.items():
            at = f"{where}[{pointer[:200]!r}]"
            if pointer and not pointer.startswith("/"):
                raise Malformed(f"{at}: not a JSON Pointer")
            if not isinstance(labels, dict):
                raise Malformed(f"{at}: expected an object, got {_kind(labels)}")
            for label, text in labels.items():
                if not isinstance(text, str):
                    raise Malformed(f"{at}[{label[:200]!r}]: expected a string, got {_kind(text)}")
            out.setdefault(target, {})[pointer] = dict(labels)
    return out


def _plain_entry(entry: dict, where: str) -> dict[str, Any]:
    """A baseline entry (``fixed``): string keys, plain values."""
    for key, value in entry.items():
        if not isinstance(value, (str, int, type(None))) or isinstance(value, bool):
            raise Malformed(f"{where}.{key}: expected a string, a number or null, got {_kind(value)}")
    return dict(entry)


@dataclass
class _Report:
    """One input report, fully checked."""

    fail_on: Severity | None = Severity.LOW
    targets: list[Target] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    unverified: list[Unverified] = field(default_factory=list)
    warnings: list[Notice] = field(default_factory=list)
    fixed: list[dict] = field(default_factory=list)
    rules: list[tuple[str, str, Severity]] = field(default_factory=list)
    scanned: list[str] = field(default_factory=list)
    shard: tuple[int, int] | None = None
    pairs: list[str] = field(default_factory=list)
    facts: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)


def _check_report(doc: Any) -> _Report:
    if not isinstance(doc, dict) or doc.get("version") != 1 or "targets" not in doc:
        raise Malformed("not an ib-audit JSON report (version 1)")
    report = _Report()
    summary = _get(doc, "summary", "report", dict, optional=True) or {}
    label = _get(summary, "fail_on", "summary", str, optional=True) or "low"
    report.fail_on = None if label == "never" else _severity(label, "summary.fail_on")
    ids = set()
    for where, t in _objects(doc, "targets", "report"):
        origin = _get(t, "origin", where, dict)
        kind = _get(origin, "kind", f"{where}.origin", str)
        optional = {k: _get(origin, k, f"{where}.origin", str, optional=True) for k in Origin.__dataclass_fields__}
        optional.pop("kind")
        status = _get(t, "status", where, str)
        error = _get(t, "error", where, str, optional=True)
        if status not in ("audited", "error") or (status == "error") != (error is not None):
            raise Malformed(f"{where}: status {status[:20]!r} does not match its error")
        target = Target(
            id=_get(t, "id", where, str),
            name=_get(t, "name", where, str),
            origin=Origin(kind, **optional),
            error=error,
            recorded_identity=_get(t, "identity", where, str, optional=True),
        )
        if target.id in ids:
            raise Malformed(f"{where}: target {target.id[:200]!r} appears twice")
        ids.add(target.id)
        report.targets.append(target)
    for where, f in _objects(doc, "findings", "report"):
        rule_id = _get(f, "rule_id", where, str)
        if not RULE_ID.match(rule_id):
            raise Malformed(f"{where}.rule_id: {rule_id[:40]!r} is not a rule id")
        target = _get(f, "target", where, str)
        if target not in ids:
            raise Malformed(f"{where}.target: not one of this report's targets")
        path = _get(f, "path", where, str)
        if path and not path.startswith("/"):
            raise Malformed(f"{where}.path: not a JSON Pointer")
        s = _get(f, "suppressed", where, dict, optional=True)
        suppressed = None
        if s is not None:
            kind = _get(s, "kind", f"{where}.suppressed", str)
            if kind not in SUPPRESSION_KINDS:
                raise Malformed(f"{where}.suppressed.kind: unknown kind {kind[:20]!r}")
            suppressed = Suppression(kind, _get(s, "reason", f"{where}.suppressed", str))
        state = _get(f, "baseline_state", where, str, optional=True)
        if state not in (None, "new", "unchanged"):
            raise Malformed(f"{where}.baseline_state: unknown state {state[:20]!r}")
        report.findings.append(
            Finding(
                rule_id=rule_id,
                rule=_get(f, "rule", where, str),
                severity=_severity(_get(f, "severity", where, str), f"{where}.severity"),
                message=_get(f, "message", where, str),
                target=target,
                path=path,
                location=_location(_get(f, "location", where, dict), f"{where}.location"),
                fingerprint=_get(f, "fingerprint", where, str),
                suppressed=suppressed,
                baseline_state=state,
                key=_get(f, "key", where, str, optional=True) or "",
                snippet=_snippet(f, where),
            )
        )
    for where, e in _objects(doc, "errors", "report"):
        report.errors.append(InputError(_get(e, "input", where, str), _get(e, "message", where, str)))
    for where, u in _objects(doc, "unverified", "report", optional=True):
        report.unverified.append(
            Unverified(*(_get(u, key, where, str) for key in ("target", "rule_id", "path", "reason")))
        )
    for where, w in _objects(doc, "warnings", "report", optional=True):
        location = _get(w, "location", where, dict, optional=True)
        report.warnings.append(
            Notice(
                _get(w, "kind", where, str),
                _get(w, "message", where, str),
                _location(location, f"{where}.location") if location is not None else None,
                _get(w, "input", where, str, optional=True),
            )
        )
    report.fixed = [_plain_entry(e, where) for where, e in _objects(doc, "fixed", "report", optional=True)]
    for where, r in _objects(doc, "rules", "report", optional=True):
        rule_id = _get(r, "id", where, str)
        if not RULE_ID.match(rule_id):
            raise Malformed(f"{where}.id: {rule_id[:40]!r} is not a rule id")
        slug = _get(r, "slug", where, str, optional=True) or rule_id
        report.rules.append((rule_id, slug, _severity(_get(r, "severity", where, str), f"{where}.severity")))
    scanned = _list(doc, "scanned", "report", optional=True)
    if not all(isinstance(item, str) for item in scanned):
        raise Malformed("scanned: expected a list of strings")
    report.scanned = scanned
    coverage = _get(doc, "coverage", "report", dict, optional=True) or {}
    shard = _get(coverage, "shard", "coverage", str, optional=True)
    if shard is not None:
        try:
            report.shard = parse_shard(shard)
        except ValueError:
            raise Malformed(f"coverage.shard: {shard[:40]!r} is not K/N with 1 <= K <= N <= {MAX_SHARDS}") from None
    pairs = _list(coverage, "pairs", "coverage", optional=True)
    if not all(isinstance(pair, str) for pair in pairs):
        raise Malformed("coverage.pairs: expected a list of strings")
    report.pairs = pairs
    report.facts = _facts(doc, ids)
    return report


def _read_report(file: Path) -> _Report:
    text, problem = read_text(file, MAX_REPORT_BYTES)
    if problem is not None:
        raise Malformed(problem)
    try:
        doc = json.loads(text or "")
    except json.JSONDecodeError as exc:
        raise Malformed(f"line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise Malformed(f"invalid JSON: {exc or 'nested too deeply'}") from None
    return _check_report(doc)


def merge_reports(files: Sequence[Path], known_rules: dict[str, tuple[str, type[Rule]]]) -> AuditResult:
    """One result from JSON reports; each file counts whole or not at all."""
    targets: dict[str, Target] = {}
    owner: dict[str, str] = {}
    findings: list[Finding] = []
    errors: list[InputError] = []
    unverified: list[Unverified] = []
    warnings: list[Notice] = []
    fixed: list[dict] = []
    rules: dict[str, RuleSpec] = {}
    scanned: list[str] = []
    fail_on: Severity | None = Severity.LOW
    shards: dict[int, dict[int, str]] = {}  # N -> K -> file
    pairs: dict[str, str] = {}
    facts: dict[str, dict[str, dict[str, str]]] = {}
    for index, file in enumerate(files):
        name = str(file)
        try:
            report = _read_report(file)
        except Malformed as exc:
            errors.append(InputError(name, f"cannot merge {name}: {exc}"))
            continue
        if index == 0:
            fail_on = report.fail_on
        duplicates = set()
        for target in report.targets:
            if target.id in targets:
                errors.append(InputError(name, f"target {target.id} was already merged from {owner[target.id]}"))
                duplicates.add(target.id)
                continue
            owner[target.id] = name
            targets[target.id] = target
        findings.extend(f for f in report.findings if f.target not in duplicates)
        errors.extend(e for e in report.errors if e.input not in duplicates)
        unverified.extend(u for u in report.unverified if u.target not in duplicates)
        facts.update((t, notes) for t, notes in report.facts.items() if t not in duplicates)
        warnings.extend(report.warnings)
        fixed.extend(report.fixed)
        if report.shard is not None:
            k, n = report.shard
            if k in shards.setdefault(n, {}):
                errors.append(InputError(name, f"shard {k}/{n} was already merged from {shards[n][k]}"))
            shards[n].setdefault(k, name)
        for pair in report.pairs:
            if pair in pairs and pairs[pair] != name:
                errors.append(InputError(name, f"account/region {pair} was already covered by {pairs[pair]}"))
            pairs.setdefault(pair, name)
        scanned.extend(report.scanned)
        for rule_id, slug, severity in report.rules:
            if rule_id not in rules:
                plugin, rule = known_rules.get(rule_id, ("merged", None))
                rule = rule or _stand_in(rule_id, slug)
                rules[rule_id] = RuleSpec(rule, plugin, severity, rule())
    for n, seen in sorted(shards.items()):
        for k in range(1, n + 1):
            if k not in seen:
                errors.append(
                    InputError("merge", f"shard {k}/{n} is missing: its accounts and regions were not scanned")
                )
    # Error targets carry their own error; the input errors list repeats them once.
    target_errors = [InputError(t.id, t.error) for t in targets.values() if t.error is not None]
    seen = set(target_errors)
    other = [e for e in errors if e not in seen]
    return AuditResult(
        targets=tuple(sorted(targets.values(), key=lambda t: t.id)),
        findings=tuple(sorted(findings, key=Finding.sort_key)),
        errors=tuple(target_errors + other),
        unverified=tuple(unverified),
        rules=tuple(sorted(rules.values(), key=lambda s: s.id)),
        fail_on=fail_on,
        scanned=tuple(dict.fromkeys(scanned)),
        fixed=tuple(fixed),
        warnings=tuple(warnings),
        report_options={"coverage": {"shard": None, "pairs": sorted(pairs)} if pairs else None},
        facts=facts,
    )
