"""SARIF 2.1.0 for GitHub code scanning, built with sarif-om.

sarif-om's usual serialiser (jschema_to_python) drops every value equal to its schema
default, so a result's ``level: "warning"`` vanishes and GitHub shows it with the
rule's level instead. ``_json_fields`` below drops only ``None`` and the numeric
``-1`` / factory sentinels sarif-om uses for "not set".
"""

from __future__ import annotations

import codecs
import gc
import gzip
import json
import os
import secrets
import zlib
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TextIO
from urllib.parse import quote

import attr
import orjson
import sarif_om as om

from auditor import __version__, controls
from auditor.model import AuditResult, Finding, Location, Severity
from auditor.reporting import ReportError, pseudo_path
from auditor.rule import PROJECT_URL

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SRCROOT = "%SRCROOT%"
# v2: rule + resource identity + the meaning of the path (auditor.identity); v1 hashed
# list positions, so a new key keeps code scanning from matching the two kinds.
FINGERPRINT_KEY = "ibAuditFingerprint/v2"

# GitHub code scanning limits (docs: "SARIF support for code scanning"): results per run,
# the gzipped size of the whole file, and runs per file (an upload of more is rejected:
# "rejecting SARIF, as there are more runs than allowed"; a directory of files is
# combined into one upload first, so it is the same limit).
MAX_RESULTS = 25_000
MAX_GZIP_BYTES = 10 * 1024 * 1024
MAX_RUNS = 20
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


def _json_fields(obj: Any) -> dict[str, Any]:
    """orjson's ``default``: the JSON fields of a sarif-om object.

    A field is left out when it is ``None``, or equal to what sarif-om uses for "not
    set": an untouched list default (its factory's value, such as ``newlineSequences``)
    or the ``-1`` index sentinel. Every other default is written. Nested objects, lists
    and dicts stay as they are: the encoder walks them (orjson in C) and calls back here
    for each sarif-om object it meets.
    """
    kind = type(obj)
    fields = _FIELDS.get(kind)
    if fields is None:
        if not attr.has(kind):
            raise TypeError(f"{kind.__name__} is not JSON serialisable")
        fields = _FIELDS[kind] = _fields_function(kind)
    return fields(obj)


_FIELDS: dict[type, Any] = {}
# Properties of the final 2.1.0 schema that sarif-om 1.0.4 lacks: it predates
# suppression.status (its draft-era "state" is rejected by the final schema).
_ADDED: dict[type, dict[str, str]] = {om.Suppression: {"status": "accepted"}}


def _fields_source(kind: type, names: dict[str, Any], prefix: str, indent: str) -> list[str]:
    """Source lines building ``out``, the set fields of ``obj``, a ``kind`` (see
    ``_json_fields``); the names they use go into ``names``."""
    lines = [f"{indent}out = {{}}"]
    key = ""
    for index, field in enumerate(attr.fields(kind)):
        default = field.default
        test = "value is not None"
        if isinstance(default, attr.Factory):
            names[f"{prefix}_unset{index}"] = default.factory()
            test += f" and value != {prefix}_unset{index}"
        elif isinstance(default, (int, float)) and not isinstance(default, bool) and default == -1:
            test += " and value != -1"
        key = repr(field.metadata["schema_property_name"])
        lines += [f"{indent}value = obj.{field.name}", f"{indent}if {test}:", f"{indent}    out[{key}] = value"]
    lines += [f"{indent}out[{key!r}] = {value!r}" for key, value in _ADDED.get(kind, {}).items()]
    return lines


def _fields_function(kind: type):
    """A function returning one sarif-om class's set fields as a dict, generated once.

    Generated rather than looped over ``attr.fields``: a result has 30 fields, and
    16,000 results made that loop most of the SARIF report's time.
    """
    names: dict[str, Any] = {}
    lines = ["def fields(obj):", *_fields_source(kind, names, "_f", "    "), "    return out"]
    exec("\n".join(lines), names)  # the source above holds attrs field names and schema keys only
    return names["fields"]


def _default_function(kinds: tuple[type, ...]):
    """``_json_fields`` with the fields of ``kinds`` read in line, tried in that order.

    A large report calls the encoder's ``default`` eight times a result (128,000 calls
    for 16,000 results); one function doing the work, rather than one looking up
    another, saves a call and a lookup for each.
    """
    names: dict[str, Any] = {"_other": _json_fields}
    lines = ["def default(obj):", "    kind = type(obj)"]
    for number, kind in enumerate(kinds):
        names[f"_kind{number}"] = kind
        lines += [f"    if kind is _kind{number}:", *_fields_source(kind, names, f"_k{number}", "        ")]
        lines.append("        return out")
    lines.append("    return _other(obj)")
    exec("\n".join(lines), names)  # as in _fields_function
    return names["default"]


# The classes of a result's objects, the most frequent first (a result has two logical
# locations and one of each other).
_DEFAULT = _default_function(
    (om.LogicalLocation, om.Result, om.Location, om.PhysicalLocation, om.Region, om.Message, om.ArtifactLocation)
)


def dumps(value: Any, *, indent: bool = False) -> bytes:
    """``value`` (holding sarif-om objects) as UTF-8 JSON: compact, or indented as
    ``json.dumps(indent=2, ensure_ascii=False)`` writes it, which orjson does in C.

    orjson refuses a lone surrogate (from a merged report) and an integer past 64 bits:
    those take the standard library's way.
    """
    try:
        return orjson.dumps(value, default=_DEFAULT, option=orjson.OPT_INDENT_2 if indent else 0)
    except TypeError:
        layout: dict[str, Any] = {"indent": 2} if indent else {"separators": (",", ":")}
        return json.dumps(value, default=_DEFAULT, ensure_ascii=False, **layout).encode(errors="backslashreplace")


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


def _maker(kind: type, *names: str):
    """A function making a ``kind`` from the values of ``names``, passed in that order;
    its other fields keep their defaults.

    sarif-om's constructors take 5 to 30 fields, all by keyword; matching keywords to
    parameters was about 4% of writing 16,000 results (counted in instructions). The
    generated function passes every field by position, in the order attrs gives.
    """
    fields = attr.fields(kind)
    unknown = set(names) - {field.name for field in fields}
    if unknown:
        raise TypeError(f"{kind.__name__} has no field {sorted(unknown)}")
    arguments = []
    for field in fields:
        if field.name in names:
            arguments.append(field.name)
        elif isinstance(field.default, attr.Factory) or field.default is attr.NOTHING:
            raise TypeError(f"{kind.__name__}.{field.name} has no constant default")
        else:
            arguments.append(repr(field.default))
    namespace = {"_kind": kind}
    # The source holds attrs field names and repr() of their constant defaults only.
    exec(f"def make({', '.join(names)}):\n    return _kind({', '.join(arguments)})", namespace)
    return namespace["make"]


_new_result = _maker(
    om.Result,
    "rule_id",
    "rule_index",
    "level",
    "kind",
    "message",
    "locations",
    "partial_fingerprints",
    "properties",
    "baseline_state",
)
_new_message = _maker(om.Message, "text")
_new_location = _maker(om.Location, "physical_location", "logical_locations")
_new_physical = _maker(om.PhysicalLocation, "artifact_location", "region")
_new_region = _maker(om.Region, "start_line", "start_column", "end_line", "end_column")
_new_logical = _maker(om.LogicalLocation, "name", "fully_qualified_name", "kind")


class _Results:
    """The sarif-om results of findings, with what results share built once.

    Thousands of results share a file's artifact, a resource's logical location, a
    configuration's name and a message's text, so those are made once and the same
    sarif-om object is used by each; a result's own objects are its message, its
    region and its property's logical location.
    """

    def __init__(self, result: AuditResult, rule_index: dict[str, int]) -> None:
        self.rule_index = rule_index
        self.targets = {t.id: t for t in result.targets}
        self.artifacts: dict[str, om.ArtifactLocation] = {}
        # Finding.target -> (its resource's logical location, the resource's name, the
        # message's "(configuration NAME)" ending).
        self.resources: dict[str, tuple[om.LogicalLocation, str, str]] = {}
        self.messages: dict[str, str] = {}  # Finding.message -> its whitespace normalised

    def artifact(self, file: str) -> om.ArtifactLocation:
        found = self.artifacts.get(file)
        if found is None:
            uri, base = artifact_uri(file)
            found = self.artifacts[file] = om.ArtifactLocation(uri=uri, uri_base_id=base)
        return found

    def _resource(self, key: str) -> tuple[om.LogicalLocation, str, str]:
        target = self.targets.get(key)
        name = qualified = key
        if target is not None:
            name = target.name
            qualified = target.origin.arn or target.origin.resource or target.id
        found = self.resources[key] = (
            om.LogicalLocation(name=name, fully_qualified_name=qualified, kind="resource"),
            qualified,
            _one_paragraph(f" (configuration {name})"),
        )
        return found

    def _file(self, finding: Finding) -> str:
        """The file of a finding without one: a live target's stand-in path."""
        target = self.targets.get(finding.target)
        return pseudo_path(target) if target is not None else "unknown.json"

    def __call__(self, findings: list[Finding]) -> list[om.Result]:
        # One loop with its names local: this is most of a large report's time.
        resources, messages, artifacts, rule_index = self.resources, self.messages, self.artifacts, self.rule_index
        region_of, location_of, physical_of = _new_region, _new_location, _new_physical
        logical_of, message_of, result_of = _new_logical, _new_message, _new_result
        levels, labels = LEVELS, LABELS
        results = []
        for finding in findings:
            target = finding.target
            resource, qualified, ending = resources.get(target) or self._resource(target)
            text = messages.get(finding.message)
            if text is None:
                text = messages[finding.message] = _one_paragraph(finding.message)
            loc = finding.location
            span = loc.span
            region = (
                region_of(span.start_line, span.start_column, span.end_line, span.end_column)
                if span
                else region_of(1, None, None, None)
            )
            file = loc.file or self._file(finding)
            path = finding.path
            severity = finding.severity
            # Arguments by position, in the order the makers above name them.
            result = result_of(
                finding.rule_id,
                rule_index[finding.rule_id],
                levels[severity],
                "fail",
                # What _sentence(f"{message} (configuration {name})") gives, from the two
                # parts normalised once each: the ending starts with a space, ends with ")".
                message_of(f"{text} {ending}." if text else f"{ending}."),
                [
                    location_of(
                        physical_of(artifacts.get(file) or self.artifact(file), region),
                        [resource, logical_of(path or "/", f"{qualified}#{path}", "property")],
                    )
                ],
                {FINGERPRINT_KEY: finding.fingerprint},
                {"severity": labels[severity], "path": path, "target": target},
                finding.baseline_state or None,
            )
            if finding.suppressed is not None:
                result.suppressions = [
                    om.Suppression(
                        kind=SUPPRESSION_KINDS.get(finding.suppressed.kind, "external"),
                        justification=finding.suppressed.reason,
                    )
                ]
            results.append(result)
        return results


LABELS = {severity: severity.label for severity in Severity}
RANKS = {"error": 0, "warning": 1, "note": 2}
# Results are built and encoded this many at a time: their sarif-om objects (about
# 2 KB a result) are encoded and freed while still in the processor's cache, and a large
# report is never held whole as objects. Measured on 16,000 results: 64 to 256 took the
# least time, 1,024 a quarter more, all at once a half more.
BATCH = 128
# runs[i].results is nested four arrays deep in the log; results encoded inside four
# arrays are indented as in the log, between these (orjson's and json's layout).
_NESTED_OPEN = b"[\n  [\n    [\n      [\n"
_NESTED_CLOSE = b"\n      ]\n    ]\n  ]\n]"
_RESULTS_CLOSE = b"\n      ]"


def build_log(result: AuditResult) -> tuple[om.SarifLog, dict[str, bytes]]:
    """The SARIF log as sarif-om objects, within GitHub's upload limits, and its results.

    Each run's results are encoded as they are built (see ``BATCH``): the run holds a
    placeholder string, mapped to the JSON array of its results, indented for its place
    in the log (``write`` puts it there). With the report option ``sarif_split == "account-region"`` there is
    one run per account and region, each with its own category
    (``<base>/<account>/<region>/``), so code scanning tracks them apart; otherwise one.
    """
    base = (result.report_options.get("sarif_category") or "").rstrip("/")
    results: dict[str, bytes] = {}
    if result.report_options.get("sarif_split") != "account-region":
        runs = [_build_run(result, base or None, results)]
    else:
        groups: dict[tuple[str, str], list] = {}
        for t in result.targets:
            groups.setdefault((t.origin.account or "files", t.origin.region or "all"), []).append(t)
        if len(groups) > MAX_RUNS:
            raise ReportError(
                f"--sarif-split account-region makes one run per account and region, {len(groups)} here, and "
                f"GitHub code scanning rejects an upload of more than {MAX_RUNS} runs: split the scan so that "
                f"each SARIF file covers at most {MAX_RUNS} (--shard, --accounts), or leave out --sarif-split"
            )
        runs = []
        known = {t.id for t in result.targets}
        total = len(result.findings)
        for index, ((account, region), members) in enumerate(sorted(groups.items())):
            ids = {t.id for t in members}
            sub = replace(
                result,
                targets=tuple(members),
                findings=tuple(f for f in result.findings if f.target in ids),
                # Errors about no particular target (config, plugins) go with the first run.
                errors=tuple(e for e in result.errors if e.input in ids or (index == 0 and e.input not in known)),
            )
            # GitHub's size limit is the whole file's: each run may take its share of it,
            # by its share of the findings, so that together they stay under it.
            share = MAX_GZIP_BYTES * len(sub.findings) // total if total else MAX_GZIP_BYTES
            runs.append(_build_run(sub, f"{base or 'ib-audit'}/{account}/{region}", results, share))
    return om.SarifLog(version="2.1.0", schema_uri=SCHEMA_URI, runs=runs), results


def _build_run(
    result: AuditResult, category: str | None, results: dict[str, bytes], limit: int | None = None
) -> om.Run:
    rules = [_rule_descriptor(spec) for spec in result.rules]
    rule_index = {spec.id: i for i, spec in enumerate(result.rules)}
    to_results = _Results(result, rule_index)
    targets = to_results.targets
    # A rule contributed by a plugin that was later disabled still needs a descriptor.
    findings = [f for f in result.findings if f.rule_id in rule_index]
    kept, encoded = _within_limits(findings, to_results, MAX_GZIP_BYTES if limit is None else limit)
    placeholder = f"ib-audit-results-{secrets.token_hex(16)}"
    results[placeholder] = encoded

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

    omitted = len(findings) - len(kept)
    if omitted:
        notifications.append(
            om.Notification(
                level="warning",
                message=om.Message(
                    text=f"{omitted} of {len(findings)} results were left out to stay within GitHub's upload limits; "
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
        results=placeholder,
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


class _Encoded(list):
    """The pieces of a JSON text (``bytes`` or views), with ``compact``: for each piece,
    the most bytes its part of the compact text (no layout whitespace) can take."""

    compact: list[int]


def _results_json(findings: list[Finding], to_results: _Results) -> _Encoded:
    """The JSON array of the findings' sarif-om results, indented for its place in the
    log (``runs[i].results``), built and encoded ``BATCH`` at a time, as pieces.

    Each batch is encoded nested in as many arrays as the results are deep in the log,
    so that orjson indents them as the log does; the nesting is cut off by a view, not
    a copy. The pieces are measured and written one after another, never joined: each
    copy of 30 MB of text was a noticeable part of the report's time.
    """
    pieces = _Encoded()
    if not findings:
        pieces.append(b"[]")
        pieces.compact = [2]
        return pieces
    layout = _least_layout()
    compact = pieces.compact = []
    for start in range(0, len(findings), BATCH):
        batch = findings[start : start + BATCH]
        encoded = dumps([[[to_results(batch)]]], indent=True)
        view = memoryview(encoded)[len(_NESTED_OPEN) : -len(_NESTED_CLOSE)]
        pieces += (b",\n" if pieces else b"[\n", view)
        compact += (1, len(view) - layout * len(batch))
    pieces.append(_RESULTS_CLOSE)
    compact.append(1)
    return pieces


_LEAST_LAYOUT: list[int] = []


def _least_layout() -> int:
    """The fewest bytes of layout (newlines, indentation, the space after a colon) any
    result has in the indented log: those of a result with every optional property
    absent (no region but its first line, no uriBaseId, a resource without a name, no
    suppression or baseline state). Computed once, by the code that writes results."""
    if not _LEAST_LAYOUT:
        bare = Finding("-", "-", Severity.INFO, "", None, "", Location(file=os.path.abspath("-")), "")  # type: ignore[arg-type]
        result = _Results(SimpleNamespace(targets=()), {"-": 0})([bare])  # type: ignore[arg-type]
        indented = dumps([[[result]]], indent=True)
        _LEAST_LAYOUT.append(len(indented) - len(_NESTED_OPEN) - len(_NESTED_CLOSE) - len(dumps(result[0])))
    return _LEAST_LAYOUT[0]


def _within_limits(
    findings: list[Finding], to_results: _Results, limit: int
) -> tuple[list[Finding], list[bytes | memoryview]]:
    """The findings whose results are written, and those results encoded: all of them, in
    report order, or the most severe that stay within GitHub's limits (``limit``: the
    gzipped bytes this run's results may take)."""
    encoded = _results_json(findings, to_results)
    if len(findings) <= MAX_RESULTS and _fits(encoded, findings, to_results, limit):
        return findings, encoded
    ranked = sorted(findings, key=lambda f: (RANKS[LEVELS[f.severity]], f.severity is not Severity.CRITICAL))
    kept = ranked[:MAX_RESULTS]
    while kept:
        encoded = _results_json(kept, to_results)
        if _fits(encoded, kept, to_results, limit):
            return kept, encoded
        kept = kept[: int(len(kept) * 0.8)]
    return kept, [b"[]"]


def _fits(indented: _Encoded, findings: list[Finding], to_results: _Results, limit: int) -> bool:
    """Whether the results, as an uploader sends them (compact JSON, gzipped), stay under
    GitHub's upload limit.

    Compressing 15 MB at gzip's level 9 took longer than writing the whole report, and
    encoding the results a second time, compactly, about as long, so cheaper answers
    come first. The indented text already encoded is the compact text plus whitespace;
    what it compresses to at zlib's fastest level is taken as a ceiling for what a
    slower, tighter level makes of the compact text (the whitespace only adds, and level
    1 gives up about a third against gzip's default on these logs). The results not yet
    compressed are counted as the most their compact text can take, stored as it is:
    their indented text less the layout every result has (``_least_layout``), which
    ends the compressing a third sooner than counting the indented text would. Under
    the limit, that answers; only results near the limit are encoded compactly and
    measured as gzip compresses them.
    """
    if _compresses_under_limit(indented, indented.compact, limit):
        return True
    compact = dumps(to_results(findings))
    return _compresses_under_limit([compact], limit=limit) or len(gzip.compress(compact)) <= limit


# Compressed this much at a time while measuring, with a ceiling checked in between.
_CHUNK = 1 << 20
# gzip's header (no file name) and trailer (CRC-32 and length), around a deflate stream.
_GZIP_HEADER = 10
_GZIP_TRAILER = 8


def _compresses_under_limit(
    pieces: list[bytes | memoryview], most: list[int] | None = None, limit: int | None = None
) -> bool:
    """Whether the text in ``pieces`` gzips under ``limit`` (else GitHub's) at zlib's fastest level.

    It is compressed a chunk at a time, each chunk flushed, so that what is compressed
    so far plus the most deflate can make of the rest (a stored block is never much
    bigger than its input) is a ceiling: once that ceiling is under the limit the
    answer is known without compressing the rest. Text small enough to begin with is
    never compressed at all. ``most``, if given, is for each piece the most bytes the
    text it stands for can take (see ``_Encoded``), counted for it while it is not
    compressed; by default its own length.
    """
    limit = MAX_GZIP_BYTES if limit is None else limit
    sizes = [len(piece) for piece in pieces]
    most = sizes if most is None else [min(a, b) for a, b in zip(most, sizes, strict=True)]
    # The bare deflate stream: gzip's is the same stream between a 10-byte header and an
    # 8-byte trailer, and its CRC-32 of the whole text is work that changes no size.
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    rest = sum(most)
    compressed = 0
    header = _GZIP_HEADER  # counted with the first output, as gzip writes it
    for piece, size, bound in zip(pieces, sizes, most, strict=True):
        view = memoryview(piece)
        rest -= bound  # the pieces after this one
        for start in range(0, size, _CHUNK):
            # This piece's part not yet compressed: at most its bound, and its own bytes.
            if compressed + _deflate_ceiling(rest + min(bound, size - start)) <= limit:
                return True
            chunk = view[start : start + _CHUNK]
            compressed += header + len(compressor.compress(chunk)) + len(compressor.flush(zlib.Z_SYNC_FLUSH))
            header = 0
    return compressed + header + len(compressor.flush()) + _GZIP_TRAILER <= limit


def _deflate_ceiling(size: int) -> int:
    """The most a gzip stream can grow by for ``size`` more bytes: zlib's deflateBound
    (size + size/4096 + size/16384 + 13) rounded up, with room for gzip's trailer."""
    return size + size // 1000 + 64


def write(result: AuditResult, stream: TextIO) -> None:
    """Write the SARIF log of ``result`` to ``stream``, indented as ``json.dump(indent=2)`` would."""
    # Building the log allocates a dozen objects per result, which trigger the
    # collector's passes over the whole scan (hundreds of thousands of objects); they
    # find nothing to collect (a batch's objects are freed by reference counting) and
    # with 16,000 results took longer than building the log.
    collecting = gc.isenabled()
    gc.disable()
    try:
        log, results = build_log(result)
        text = dumps(log, indent=True)
    finally:
        if collecting:
            gc.enable()
    emit = _writer(stream)
    for placeholder, pieces in results.items():  # in the order of the runs
        before, _, text = text.partition(dumps(placeholder))
        emit(before)
        for piece in pieces:
            emit(piece)
    emit(text)
    emit(b"\n")


def _writer(stream: TextIO):
    """A function writing UTF-8 text to ``stream``: to the file beneath a UTF-8 text
    stream as it is (decoding and re-encoding 30 MB cost as much as writing it),
    otherwise decoded. The encoder's text is valid UTF-8 throughout."""
    binary = getattr(stream, "buffer", None)
    encoding = getattr(stream, "encoding", None)
    if binary is not None and encoding and codecs.lookup(encoding).name == "utf-8":
        stream.flush()
        return binary.write
    return lambda data: stream.write(bytes(data).decode())
