"""SARIF 2.1.0 for GitHub code scanning, built with sarif-om.

sarif-om's usual serialiser (jschema_to_python) drops every value equal to its schema
default, so a result's ``level: "warning"`` vanishes and GitHub shows it with the
rule's level instead. ``to_sarif_json`` below drops only ``None`` and the numeric
``-1`` / factory sentinels sarif-om uses for "not set".
"""

from __future__ import annotations

import gc
import gzip
import json
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import attr
import orjson
import sarif_om as om

from auditor import __version__, controls
from auditor.model import AuditResult, Finding, Severity
from auditor.reporting import pseudo_path
from auditor.rule import PROJECT_URL

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SRCROOT = "%SRCROOT%"
# v2: rule + resource identity + the meaning of the path (auditor.identity); v1 hashed
# list positions, so a new key keeps code scanning from matching the two kinds.
FINGERPRINT_KEY = "ibAuditFingerprint/v2"

# GitHub code scanning limits (docs: "SARIF support for code scanning").
MAX_RESULTS = 25_000
MAX_GZIP_BYTES = 10 * 1024 * 1024
MAX_TAGS = 20

LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
SUPPRESSION_KINDS = {"tag": "inSource", "inline": "inSource", "config": "external", "baseline": "external"}


def to_sarif_json(obj: Any, memo: dict[int, tuple[Any, Any]] | None = None) -> Any:
    """Serialise sarif-om objects to plain JSON values, keeping meaningful defaults.

    ``memo`` maps ``id()`` of objects already serialised (results measured for GitHub's
    size limit, then written) to the object and its JSON value, which is reused. The memo
    holds the object so that its ``id()`` cannot be reused by another while it lives.
    """
    kind = type(obj)
    if kind in _PLAIN or obj is None:
        return obj
    if kind is list or kind is tuple:
        return [to_sarif_json(v, memo) for v in obj]
    if kind is dict:
        return {k: v if v.__class__ in _PLAIN else to_sarif_json(v, memo) for k, v in obj.items()}
    serialise = _SERIALISERS.get(kind)
    if serialise is None:
        if not attr.has(kind):
            if isinstance(obj, (list, tuple)):
                return [to_sarif_json(v, memo) for v in obj]
            if isinstance(obj, dict):
                return {k: to_sarif_json(v, memo) for k, v in obj.items()}
            return obj
        serialise = _SERIALISERS[kind] = _serialiser(kind)
    if memo is not None:
        done = memo.get(id(obj))
        if done is not None:
            return done[1]
    return serialise(obj, memo)


_PLAIN = (str, int, bool, float)
_SERIALISERS: dict[type, Any] = {}


def _serialiser(kind: type):
    """A function writing one sarif-om class's fields as a dict, generated once per class.

    A field is left out when it is ``None``, or equal to what sarif-om uses for "not set":
    an untouched list default (its factory's value, such as ``newlineSequences``) or the
    ``-1`` index sentinel. Every other default is written. Generated rather than looped
    over ``attr.fields``: a result has 30 fields, and 16,000 results made that loop most
    of the SARIF report's time. Values are converted inline for the common kinds (text
    and numbers, nested sarif-om objects, lists, dicts of plain values).
    """
    names: dict[str, Any] = {"_convert": to_sarif_json, "_plain": _PLAIN, "_classes": _SERIALISERS}
    lines = ["def serialise(obj, memo):", "    out = {}"]
    for index, field in enumerate(attr.fields(kind)):
        default = field.default
        test = "value is not None"
        if isinstance(default, attr.Factory):
            names[f"_unset{index}"] = default.factory()
            test += f" and value != _unset{index}"
        elif isinstance(default, (int, float)) and not isinstance(default, bool) and default == -1:
            test += " and value != -1"
        key = repr(field.metadata["schema_property_name"])
        lines += [
            f"    value = obj.{field.name}",
            f"    if {test}:",
            "        kind = value.__class__",
            "        if kind in _plain:",
            f"            out[{key}] = value",
            "        elif kind is list:",
            f"            out[{key}] = [_convert(item, memo) for item in value]",
            "        elif kind is dict:",
            f"            out[{key}] = {{k: v if v.__class__ in _plain else _convert(v, memo)"
            " for k, v in value.items()}",
            "        elif (nested := _classes.get(kind)) is not None:",
            f"            out[{key}] = nested(value, memo)",
            "        else:",
            f"            out[{key}] = _convert(value, memo)",
        ]
    lines.append("    return out")
    exec("\n".join(lines), names)  # the source above holds attrs field names and schema keys only
    return names["serialise"]


def artifact_uri(path: str) -> tuple[str, str | None]:
    """A repository-relative URI under %SRCROOT%, or an absolute file URI."""
    p = Path(path)
    if p.is_absolute():
        return p.as_uri(), None
    return quote(p.as_posix()), SRCROOT


def _rule_descriptor(spec) -> om.ReportingDescriptor:
    rule = spec.rule
    sections = rule.help_sections()
    parts = [sections["summary"]] + [f"{name.capitalize()}:\n{sections[name]}" for name in ("why", "example", "fix")]
    text = "\n\n".join(parts)
    uri = rule.help_uri()
    markdown = (
        f"{sections['summary']}\n\n**Why.** {_one_paragraph(sections['why'])}\n\n"
        f"**Example**\n\n```\n{sections['example']}\n```\n\n**Fix.** {_one_paragraph(sections['fix'])}\n\n"
        f"Suppress on a resource with the tag `ib-audit:ignore = {rule.id}`."
        + (f" [Rule documentation]({uri})" if uri else "")
    )
    # The rule's own tags: GitHub ranks a rule by security-severity only when "security" is one.
    tags = list(dict.fromkeys(rule.tags))[:MAX_TAGS]
    return om.ReportingDescriptor(
        id=rule.id,
        name=_pascal(rule.slug),
        short_description=om.MultiformatMessageString(text=_sentence(rule.summary)),
        full_description=om.MultiformatMessageString(text=_sentence(sections["summary"])),
        help=om.MultiformatMessageString(text=text, markdown=markdown),
        help_uri=uri,
        default_configuration=om.ReportingConfiguration(level=LEVELS[spec.severity]),
        properties={
            "tags": tags,
            "security-severity": SECURITY_SEVERITY[spec.severity],
            "precision": "very-high",
            "problem.severity": {"error": "error", "warning": "warning", "note": "recommendation"}[
                LEVELS[spec.severity]
            ],
            "slug": rule.slug,
            # The compliance controls the rule evidences, as Security Hub writes them.
            **({"controls": requirements} if (requirements := controls.requirements_for(rule)) else {}),
        },
    )


def _pascal(slug: str) -> str:
    return "".join(part.capitalize() for part in slug.split("-"))


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."


def _one_paragraph(text: str) -> str:
    return " ".join(text.split())


class _SharedLocations:
    """The artifact of each file and the logical location of each resource, built once:
    thousands of results share them (and serialise to one shared JSON value)."""

    def __init__(self) -> None:
        self.artifacts: dict[str, om.ArtifactLocation] = {}
        self.resources: dict[tuple[str, str], om.LogicalLocation] = {}

    def artifact(self, file: str) -> om.ArtifactLocation:
        found = self.artifacts.get(file)
        if found is None:
            uri, base = artifact_uri(file)
            found = self.artifacts[file] = om.ArtifactLocation(uri=uri, uri_base_id=base)
        return found

    def resource(self, name: str, qualified: str) -> om.LogicalLocation:
        found = self.resources.get((name, qualified))
        if found is None:
            found = self.resources[(name, qualified)] = om.LogicalLocation(
                name=name, fully_qualified_name=qualified, kind="resource"
            )
        return found


def _location(finding: Finding, target, shared: _SharedLocations) -> om.Location:
    loc = finding.location
    file = loc.file or (pseudo_path(target) if target is not None else "unknown.json")
    span = loc.span
    region = (
        om.Region(
            start_line=span.start_line,
            start_column=span.start_column,
            end_line=span.end_line,
            end_column=span.end_column,
        )
        if span
        else om.Region(start_line=1)
    )
    resource = target.origin.arn or target.origin.resource or target.id if target is not None else finding.target
    return om.Location(
        physical_location=om.PhysicalLocation(artifact_location=shared.artifact(file), region=region),
        logical_locations=[
            shared.resource(target.name if target is not None else finding.target, resource),
            om.LogicalLocation(
                name=finding.path or "/", fully_qualified_name=f"{resource}#{finding.path}", kind="property"
            ),
        ],
    )


def _result(finding: Finding, rule_index: dict[str, int], target, shared: _SharedLocations) -> om.Result:
    name = target.name if target is not None else finding.target
    result = om.Result(
        rule_id=finding.rule_id,
        rule_index=rule_index[finding.rule_id],
        level=LEVELS[finding.severity],
        kind="fail",
        message=om.Message(text=_sentence(f"{finding.message} (configuration {name})")),
        locations=[_location(finding, target, shared)],
        partial_fingerprints={FINGERPRINT_KEY: finding.fingerprint},
        properties={"severity": finding.severity.label, "path": finding.path, "target": finding.target},
    )
    if finding.suppressed is not None:
        result.suppressions = [
            om.Suppression(
                kind=SUPPRESSION_KINDS.get(finding.suppressed.kind, "external"),
                justification=finding.suppressed.reason,
            )
        ]
    if finding.baseline_state:
        result.baseline_state = finding.baseline_state
    return result


def build_log(result: AuditResult) -> dict[str, Any]:
    """The SARIF log as JSON values, within GitHub's upload limits.

    With the report option ``sarif_split == "account-region"`` there is one run per
    account and region, each with its own category (``<base>/<account>/<region>/``), so
    code scanning tracks them apart; otherwise one run.
    """
    base = (result.report_options.get("sarif_category") or "").rstrip("/")
    memo: dict[int, tuple[Any, Any]] = {}  # results serialised once, for the size check and the log
    if result.report_options.get("sarif_split") != "account-region":
        runs = [_build_run(result, base or None, memo)]
    else:
        groups: dict[tuple[str, str], list] = {}
        for t in result.targets:
            groups.setdefault((t.origin.account or "files", t.origin.region or "all"), []).append(t)
        runs = []
        known = {t.id for t in result.targets}
        for index, ((account, region), members) in enumerate(sorted(groups.items())):
            ids = {t.id for t in members}
            sub = replace(
                result,
                targets=tuple(members),
                findings=tuple(f for f in result.findings if f.target in ids),
                # Errors about no particular target (config, plugins) go with the first run.
                errors=tuple(e for e in result.errors if e.input in ids or (index == 0 and e.input not in known)),
            )
            runs.append(_build_run(sub, f"{base or 'ib-audit'}/{account}/{region}", memo))
    log = to_sarif_json(om.SarifLog(version="2.1.0", schema_uri=SCHEMA_URI, runs=runs), memo)
    # sarif-om 1.0.4 predates suppression.status (it has a draft-era "state" that the
    # final 2.1.0 schema rejects), so the status is added to the serialised form.
    for run in log["runs"]:
        for res in run.get("results", []):
            for suppression in res.get("suppressions", []):
                suppression["status"] = "accepted"
    return log


def _build_run(result: AuditResult, category: str | None, memo: dict[int, tuple[Any, Any]]) -> om.Run:
    rules = [_rule_descriptor(spec) for spec in result.rules]
    rule_index = {spec.id: i for i, spec in enumerate(result.rules)}
    # A rule contributed by a plugin that was later disabled still needs a descriptor.
    targets = {t.id: t for t in result.targets}
    shared = _SharedLocations()
    results = [
        _result(f, rule_index, targets.get(f.target), shared) for f in result.findings if f.rule_id in rule_index
    ]

    notifications = []
    for error in result.errors:
        note = om.Notification(level="error", message=om.Message(text=_sentence(error.display())))
        target = targets.get(error.input)
        file = target.origin.file if target is not None else None
        if file:
            uri, base = artifact_uri(file)
            note.locations = [
                om.Location(
                    physical_location=om.PhysicalLocation(
                        artifact_location=om.ArtifactLocation(uri=uri, uri_base_id=base)
                    )
                )
            ]
        notifications.append(note)

    for warning in result.warnings:
        note = om.Notification(level="warning", message=om.Message(text=_sentence(warning.display())))
        loc = warning.location
        if loc is not None and loc.file:
            uri, base = artifact_uri(loc.file)
            physical = om.PhysicalLocation(artifact_location=om.ArtifactLocation(uri=uri, uri_base_id=base))
            if loc.span is not None:
                physical.region = om.Region(start_line=loc.span.start_line, start_column=loc.span.start_column)
            note.locations = [om.Location(physical_location=physical)]
        notifications.append(note)

    kept = _within_limits(results, memo)
    omitted = len(results) - len(kept)
    if omitted:
        notifications.append(
            om.Notification(
                level="warning",
                message=om.Message(
                    text=f"{omitted} of {len(results)} results were left out to stay within GitHub's upload limits; "
                    "the most severe were kept. Use the JSON report for all of them."
                ),
            )
        )

    run = om.Run(
        tool=om.Tool(
            driver=om.ToolComponent(
                name="ib-audit",
                version=__version__,
                semantic_version=__version__,
                information_uri=PROJECT_URL,
                rules=rules,
            )
        ),
        results=kept,
        invocations=[
            om.Invocation(
                execution_successful=not result.errors,
                tool_execution_notifications=notifications or None,
            )
        ],
        original_uri_base_ids={SRCROOT: om.ArtifactLocation(uri=Path.cwd().as_uri() + "/")},
        column_kind="unicodeCodePoints",
    )
    if category:
        run.automation_details = om.RunAutomationDetails(id=category.rstrip("/") + "/")
    return run


def _within_limits(results: list[om.Result], memo: dict[int, tuple[Any, Any]]) -> list[om.Result]:
    order = {"error": 0, "warning": 1, "note": 2}
    ranked = sorted(results, key=lambda r: (order[r.level], r.properties["severity"] != "critical"))
    kept = ranked[:MAX_RESULTS]
    for r in kept:  # serialised once: measured here, written with the log
        memo[id(r)] = (r, to_sarif_json(r))
    while kept and not _fits([memo[id(r)][1] for r in kept]):
        kept = kept[: int(len(kept) * 0.8)]
    if len(kept) == len(results):
        return results  # keep report order when nothing is cut
    return kept


def _fits(results: list[dict]) -> bool:
    """Whether the results, gzipped, stay under GitHub's upload limit.

    Measured on their compact JSON (what an uploader sends). Compressing 15 MB at gzip's
    level 9 took longer than writing the whole report, so cheaper answers come first:
    text that small cannot grow past the limit, and what fits at zlib's fastest level
    fits at any slower, tighter one.
    """
    data = _compact(results)
    if len(data) <= MAX_GZIP_BYTES * 0.99:
        return True
    if len(zlib.compress(data, 1)) <= MAX_GZIP_BYTES:
        return True
    return len(gzip.compress(data)) <= MAX_GZIP_BYTES


def _compact(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # a lone surrogate from a merged report
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode(errors="backslashreplace")


def write(result: AuditResult, stream: TextIO) -> None:
    """Write the SARIF log of ``result`` to ``stream``, indented as ``json.dump(indent=2)`` would."""
    # Building the log allocates a dozen containers per result and frees none of them, so
    # the collector's passes over the whole scan (hundreds of thousands of objects) find
    # nothing to collect; with 16,000 results they took longer than building the log.
    collecting = gc.isenabled()
    gc.disable()
    try:
        log = build_log(result)
    finally:
        if collecting:
            gc.enable()
    try:
        # orjson writes what json.dump(indent=2, ensure_ascii=False) writes, in C.
        stream.write(orjson.dumps(log, option=orjson.OPT_INDENT_2).decode())
    except TypeError:
        json.dump(log, stream, indent=2, ensure_ascii=False)
    stream.write("\n")
