"""The types that cross module boundaries: targets, findings, results.

The canonical configuration itself is the API shape (a JSON document, the contents
of ``distributionConfiguration``); everything around it is a frozen dataclass.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

_R = TypeVar("_R")


class Severity(enum.IntEnum):
    """Finding severity, ordered so that comparisons mean "at least as severe"."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of {names})") from None

    @property
    def label(self) -> str:
        return self.name.lower()


# What an unresolved value is known to mean even though its literal is unknown: the
# deploying account's own account id, region or partition (CloudFormation's pseudo
# parameters, Terraform's aws_caller_identity / aws_region / aws_partition data sources).
OWN_ACCOUNT = "account"
OWN_REGION = "region"
OWN_PARTITION = "partition"
# A KMS key the same stack or module creates (AWS::KMS::Key, aws_kms_key and their
# aliases): customer managed, whatever its id turns out to be.
CUSTOMER_KEY = "customer-managed-key"


@dataclass(frozen=True)
class Unresolved:
    """A value the source could not resolve to a literal (``!Ref``, ``var.x``...).

    Rules that need the literal skip the check and record it as unverified.
    ``refers_to`` is set when the expression is known to stand for the deploying
    account's own account, region or partition (``OWN_ACCOUNT``...), so a rule can
    tell "shared with its own account" from "shared with an unknown account".
    """

    expression: str
    refers_to: str | None = None

    def __str__(self) -> str:
        return self.expression


def is_unresolved(value: Any) -> bool:
    return isinstance(value, Unresolved)


@dataclass(frozen=True)
class Span:
    """A 1-based region of a file."""

    start_line: int
    start_column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class Location:
    """Where a finding is: a file region, an ARN, or both."""

    file: str | None = None
    span: Span | None = None
    arn: str | None = None

    def display(self) -> str:
        if self.file:
            if self.span:
                return f"{self.file}:{self.span.start_line}:{self.span.start_column}"
            return self.file
        return self.arn or "<unknown>"


def escape_pointer_token(token: str | int) -> str:
    token = str(token)
    if "~" in token or "/" in token:
        return token.replace("~", "~0").replace("/", "~1")
    return token


def join_pointer(base: str, *tokens: str | int) -> str:
    """Append tokens to an RFC 6901 JSON Pointer."""
    if len(tokens) == 1:  # the common case, called for every value a source reads
        token = str(tokens[0])
        if "~" not in token and "/" not in token:
            return f"{base}/{token}"
    return base + "".join("/" + escape_pointer_token(t) for t in tokens)


def parent_pointer(pointer: str) -> str:
    return pointer.rsplit("/", 1)[0] if pointer else pointer


def value_at(document: Any, pointer: str) -> tuple[Any, bool]:
    """The value at an RFC 6901 JSON Pointer and True, or the deepest value on the way
    to it and False (a member or index that is not there)."""
    value = document
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, Mapping) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            return value, False
    return value, True


@dataclass(frozen=True)
class SourceMap:
    """Maps canonical JSON Pointers back to regions of one file.

    ``spans`` is keyed by the pointer *in the file's own document*; ``prefix`` is the
    file pointer of the canonical root (``/distributionConfiguration`` for an API
    response, ``/3`` for the fourth entry of a list) and ``renames`` maps canonical
    pointers onto file pointers where the shapes differ (CloudFormation PascalCase...).
    A missing member resolves to its nearest enclosing member that the file has.
    """

    file: str
    spans: Mapping[str, Span]
    prefix: str = ""
    renames: Mapping[str, str] = field(default_factory=dict)

    def to_file_pointer(self, canonical: str) -> str:
        if self.renames:
            # Longest canonical prefix that has an explicit rename wins.
            probe = canonical
            while True:
                if probe in self.renames:
                    return self.renames[probe] + canonical[len(probe) :]
                if not probe:
                    break
                probe = parent_pointer(probe)
        return self.prefix + canonical

    def locate(self, canonical: str) -> Location:
        pointer = self.to_file_pointer(canonical)
        while True:
            span = self.spans.get(pointer)
            if span is not None:
                return Location(file=self.file, span=span)
            if not pointer:
                return Location(file=self.file)
            pointer = parent_pointer(pointer)


@dataclass(frozen=True)
class Origin:
    """Where a target came from."""

    kind: str  # aws | json | cloudformation | terraform | terraform-plan | terraform-state
    file: str | None = None
    arn: str | None = None
    region: str | None = None
    account: str | None = None
    resource: str | None = None  # CloudFormation logical id or Terraform address
    # The document is what the API returned (saved get-distribution-configuration
    # output), not what an author sends: members only Image Builder sets are expected.
    # Live scans are responses by kind. Not part of the report's origin object.
    response: bool = False

    @property
    def is_response(self) -> bool:
        return self.response or self.kind == "aws"

    def as_dict(self) -> dict[str, str]:
        out = {"kind": self.kind}
        for key in ("file", "arn", "region", "account", "resource"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True)
class InlineSuppression:
    """A suppression written next to the resource (tag, metadata, comment).

    Sources say where it is written, so a warning about it can name its place: either a
    pointer the target's source map resolves (``/tags/ib-audit:ignore``, a CloudFormation
    ``/Metadata/...`` entry) or a line and column of the target's file (a comment).
    ``line_only`` limits it to findings on that line (a comment trailing a property).
    An entry the source could not parse carries ``problem`` instead of a rule id.
    """

    rule_id: str  # a rule id, or "all"; "" when malformed
    kind: str  # tag | inline
    reason: str  # "" when the author gave none
    until: str | None = None  # "YYYY-MM-DD" as written: it stops suppressing after that day
    pointer: str | None = None
    line: int | None = None
    column: int | None = None
    line_only: bool = False
    problem: str | None = None


@dataclass(frozen=True)
class UndefinedMember:
    """A member the author's format does not define, as the source that read it found it.

    Sources that know their format's own schema (CloudFormation) list these per scenario,
    with a message in the author's terms; IBD016 reports them. ``path`` is a canonical
    pointer to where the member is written (it is never part of the canonical config).
    """

    path: str
    message: str


@dataclass(frozen=True)
class Scenario:
    """One way a template deploys: the canonical configuration under one set of assumptions.

    - ``conditions``: the CloudFormation condition values this scenario assumes, e.g.
      ``(("Public", True),)``; empty when the source has no conditions.
    - ``provenance``: canonical pointer -> where a resolved value came from ("parameter
      Groups = 'all' (its Default)"), so a finding that relied on it can say so.
    - ``undefined``: members the author's format does not define (None: judge by the API
      model, as for JSON and Terraform).
    """

    config: Mapping[str, Any]
    source_map: SourceMap | None = None
    conditions: tuple[tuple[str, bool], ...] = ()
    provenance: Mapping[str, str] = field(default_factory=dict)
    undefined: tuple[UndefinedMember, ...] | None = None


@dataclass(frozen=True)
class Target:
    """One distribution configuration to audit, or one input that failed to load.

    A template with conditions carries one :class:`Scenario` per reachable combination of
    them; ``config`` and ``source_map`` are then the first scenario's. ``unverified``
    lists ``(canonical pointer, reason)`` the source itself could not resolve for every
    rule (more condition combinations than are audited, a ``Properties`` intrinsic).
    """

    id: str
    name: str
    origin: Origin
    config: Mapping[str, Any] | None = None
    source_map: SourceMap | None = None
    suppressions: tuple[InlineSuppression, ...] = ()
    error: str | None = None  # set when the input could not be read or fetched
    # How the source spells an API member (CloudFormation "KmsKeyId", Terraform
    # "kms_key_id"), so messages suggest what the author should write. None: as the API.
    spell: Callable[[str], str] | None = None
    # The identity recorded in a JSON report, for targets rebuilt by ``merge`` (which has
    # no configuration to derive it from).
    recorded_identity: str | None = None
    scenarios: tuple[Scenario, ...] = ()
    unverified: tuple[tuple[str, str], ...] = ()
    # Set by a source whose configuration holds literals only (a JSON document that
    # type-checked): no ``Unresolved`` anywhere, so the engine need not look for one.
    literal: bool = False

    @property
    def status(self) -> str:
        return "error" if self.error is not None else "audited"

    @property
    def identity(self) -> str:
        """The resource this is, without its file or any line (``auditor.identity`` explains)."""
        if self.recorded_identity is not None:
            return self.recorded_identity
        origin = self.origin
        if origin.arn:
            return origin.arn
        if origin.resource:
            family = "terraform" if origin.kind.startswith("terraform") else origin.kind
            return f"{family}:{origin.resource}"
        name = (self.config or {}).get("name")
        if origin.kind == "json" and isinstance(name, str) and name:
            return f"name:{name}"
        return f"file:{self.id}"

    def variants(self) -> tuple[Scenario, ...]:
        """The scenarios to audit: the source's, or the one configuration it read."""
        if self.scenarios:
            return self.scenarios
        if self.config is None:
            return ()
        return (Scenario(self.config, self.source_map),)

    def slim(self, keep_config: bool = False) -> Target:
        """What is left to report once the target is audited: its id, name, origin, error
        and identity, without the file's positions, scenarios and suppression entries
        (and without the configuration unless ``keep_config``: then a template's
        scenarios keep their configurations and conditions, so that a report can show
        each branch where they differ rather than one branch as the value)."""
        return evolve(
            self,
            config=self.config if keep_config else None,
            source_map=None,
            scenarios=tuple(Scenario(s.config, conditions=s.conditions) for s in self.scenarios)
            if keep_config and len(self.scenarios) > 1
            else (),
            suppressions=(),
            unverified=(),
            recorded_identity=self.identity,
        )

    def locate(self, canonical: str, source_map: SourceMap | None = None) -> Location:
        source_map = source_map or self.source_map
        if source_map is not None:
            loc = source_map.locate(canonical)
            return Location(file=loc.file, span=loc.span, arn=self.origin.arn)
        return Location(arn=self.origin.arn or self.id)


@dataclass(frozen=True)
class Suppression:
    kind: str  # tag | inline | config | baseline
    reason: str


@dataclass(frozen=True)
class Snippet:
    """Source lines around a finding (``first_line`` is the 1-based number of the first)."""

    first_line: int
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Finding:
    rule_id: str
    rule: str  # slug
    severity: Severity
    message: str
    target: str  # Target.id
    path: str  # RFC 6901 pointer into the canonical model
    location: Location
    fingerprint: str
    suppressed: Suppression | None = None
    baseline_state: str | None = None  # new | unchanged, when a baseline was given
    key: str = ""  # the path's meaning (auditor.identity.SemanticKeys): what the fingerprint hashes
    snippet: Snippet | None = None  # the lines around it (auditor.snippets), for reports

    def sort_key(self) -> tuple:
        """File (or ARN), line, column; the path where there is no line; then rule id."""
        loc = self.location
        span = loc.span
        where = (0, span.start_line, span.start_column, "") if span else (1, 0, 0, self.path)
        return (loc.file or loc.arn or "", *where, self.rule_id, self.target, self.path, self.message)


def evolve(record: _R, **changes: Any) -> _R:
    """``dataclasses.replace`` for the records here, at a tenth of its cost: a copy of
    their fields with ``changes``. Only for classes without ``__post_init__`` (nothing
    to rerun) whose ``changes`` name fields. A scan calls it for each target (``slim``)
    and once or twice per finding (its snippet, its suppression)."""
    new = object.__new__(type(record))
    fields = new.__dict__
    fields.update(record.__dict__)
    fields.update(changes)
    return new


def fingerprint(rule_id: str, identity: str, key: str) -> str:
    """A finding's stable identity: its rule, its resource and the meaning of its path."""
    digest = hashlib.sha256(f"{rule_id}\0{identity}\0{key}".encode()).hexdigest()
    return digest[:32]


@dataclass(frozen=True)
class Unverified:
    """A check a rule could not complete because a value is unresolved."""

    target: str
    rule_id: str
    path: str
    reason: str


@dataclass(frozen=True)
class InputError:
    """An input that could not be read, fetched or configured."""

    input: str
    message: str

    def display(self) -> str:
        return f"{self.input}: {self.message}"


@dataclass(frozen=True)
class Notice:
    """A warning about the run that is not a finding: a suppression that is malformed,
    names an unknown rule, has expired or went unused; an old baseline format; a file a
    directory walk would not read (a symbolic link out of the directory).

    Warnings never change the exit code (as in ruff); they name their place.
    """

    # unknown-rule | malformed-suppression | expired-suppression | missing-reason | unused-suppression
    # | baseline | retired-rule | skipped-link | yaml-alias
    kind: str
    message: str
    location: Location | None = None
    input: str | None = None  # what it is about when there is no location (a baseline file)

    def where(self) -> str:
        if self.location is not None:
            return self.location.display()
        return self.input or "ib-audit"

    def display(self) -> str:
        return f"{self.where()}: {self.message}"


@dataclass(frozen=True)
class AuditResult:
    targets: tuple[Target, ...]
    findings: tuple[Finding, ...]
    errors: tuple[InputError, ...]
    unverified: tuple[Unverified, ...] = ()
    rules: tuple[Any, ...] = ()  # the RuleSpec of every rule that ran
    fail_on: Severity | None = Severity.LOW  # None: the gate is off
    scanned: tuple[str, ...] = ()  # what the user asked to scan (paths, regions)
    config_file: str | None = None
    report_options: Mapping[str, Any] = field(default_factory=dict)  # e.g. sarif_category
    fixed: tuple[Mapping[str, Any], ...] = ()  # baseline entries no longer found
    warnings: tuple[Notice, ...] = ()
    # Account-context facts rules noted for reports: target id -> pointer -> label -> text.
    facts: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out = {s.label: 0 for s in sorted(Severity, reverse=True)}
        for f in self.findings:
            if f.suppressed is None:
                out[f.severity.label] += 1
        return out

    @property
    def suppressed_count(self) -> int:
        return sum(1 for f in self.findings if f.suppressed is not None)

    @property
    def failed(self) -> bool:
        """True when an unsuppressed finding reaches the gate."""
        if self.fail_on is None:
            return False
        return any(
            f.suppressed is None and f.severity >= self.fail_on and f.severity > Severity.INFO for f in self.findings
        )

    @property
    def exit_code(self) -> int:
        if self.errors:
            return 2
        return 1 if self.failed else 0
