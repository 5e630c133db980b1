"""SARIF 2.1.0 for GitHub code scanning, built with sarif-om.

sarif-om's usual serialiser (jschema_to_python) drops every value equal to its schema
default, so a result's ``level: "warning"`` vanishes and GitHub shows it with the
rule's level instead. ``to_sarif_json`` below drops only ``None`` and the numeric
``-1`` / factory sentinels sarif-om uses for "not set".
"""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import attr
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


def to_sarif_json(obj: Any) -> Any:
    """Serialise sarif-om objects to plain JSON values, keeping meaningful defaults."""
    if attr.has(type(obj)):
        out = {}
        for field in attr.fields(type(obj)):
            value = getattr(obj, field.name)
            if value is None:
                continue
            default = field.default
            if isinstance(default, attr.Factory):
                if value == default.factory():
                    continue  # an untouched list default such as newlineSequences
            elif isinstance(default, (int, float)) and not isinstance(default, bool) and default == -1 == value:
                continue  # sarif-om's "not set" index sentinel
            out[field.metadata["schema_property_name"]] = to_sarif_json(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [to_sarif_json(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_sarif_json(v) for k, v in obj.items()}
    return obj


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


def _location(finding: Finding, target) -> om.Location:
    loc = finding.location
    file = loc.file or (pseudo_path(target) if target is not None else "unknown.json")
    uri, base = artifact_uri(file)
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
        physical_location=om.PhysicalLocation(
            artifact_location=om.ArtifactLocation(uri=uri, uri_base_id=base), region=region
        ),
        logical_locations=[
            om.LogicalLocation(
                name=target.name if target is not None else finding.target,
                fully_qualified_name=resource,
                kind="resource",
            ),
            om.LogicalLocation(
                name=finding.path or "/", fully_qualified_name=f"{resource}#{finding.path}", kind="property"
            ),
        ],
    )


def _result(finding: Finding, rule_index: dict[str, int], target) -> om.Result:
    name = target.name if target is not None else finding.target
    result = om.Result(
        rule_id=finding.rule_id,
        rule_index=rule_index[finding.rule_id],
        level=LEVELS[finding.severity],
        kind="fail",
        message=om.Message(text=_sentence(f"{finding.message} (configuration {name})")),
        locations=[_location(finding, target)],
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
    if result.report_options.get("sarif_split") != "account-region":
        runs = [_build_run(result, base or None)]
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
            runs.append(_build_run(sub, f"{base or 'ib-audit'}/{account}/{region}"))
    log = to_sarif_json(om.SarifLog(version="2.1.0", schema_uri=SCHEMA_URI, runs=runs))
    # sarif-om 1.0.4 predates suppression.status (it has a draft-era "state" that the
    # final 2.1.0 schema rejects), so the status is added to the serialised form.
    for run in log["runs"]:
        for res in run.get("results", []):
            for suppression in res.get("suppressions", []):
                suppression["status"] = "accepted"
    return log


def _build_run(result: AuditResult, category: str | None) -> om.Run:
    rules = [_rule_descriptor(spec) for spec in result.rules]
    rule_index = {spec.id: i for i, spec in enumerate(result.rules)}
    # A rule contributed by a plugin that was later disabled still needs a descriptor.
    targets = {t.id: t for t in result.targets}
    results = [_result(f, rule_index, targets.get(f.target)) for f in result.findings if f.rule_id in rule_index]

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

    kept = _within_limits(results)
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


def _within_limits(results: list[om.Result]) -> list[om.Result]:
    order = {"error": 0, "warning": 1, "note": 2}
    ranked = sorted(results, key=lambda r: (order[r.level], r.properties["severity"] != "critical"))
    kept = ranked[:MAX_RESULTS]
    while kept and len(gzip.compress(json.dumps(to_sarif_json(kept)).encode())) > MAX_GZIP_BYTES:
        kept = kept[: int(len(kept) * 0.8)]
    if len(kept) == len(results):
        return results  # keep report order when nothing is cut
    return kept


def write(result: AuditResult, stream: TextIO) -> None:
    json.dump(build_log(result), stream, indent=2, ensure_ascii=False)
    stream.write("\n")
