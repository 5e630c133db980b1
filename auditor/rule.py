"""What a rule is: declared metadata, typed options, and a check over the canonical model.

A rule never computes a location: it yields a JSON Pointer into the canonical model
and a message, and the engine maps the pointer back to file, line and column (or ARN).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from auditor.model import OWN_ACCOUNT, OWN_REGION, Severity, UndefinedMember, Unresolved

if TYPE_CHECKING:
    from auditor.context import Fact, FactKey, FactStore

PROJECT_URL = "https://github.com/ib-audit/ib-audit"
BUILTIN_RULES_PACKAGE = "auditor.rules"


@dataclass(frozen=True)
class Source:
    """The documented AWS fact a rule rests on: a page or model entry, by title, and its words.

    ``shape`` is set when the quote comes from a botocore service model's documentation
    (``"LaunchTemplateConfiguration.setDefaultVersion"`` in ``service``'s model); a test
    checks that those quotes still appear in the pinned botocore.
    """

    title: str
    quote: str
    shape: str | None = None
    service: str = "imagebuilder"

    def display(self) -> str:
        return f'{self.title}: "{self.quote}"'


_SERVICE_TITLES = {"imagebuilder": "EC2 Image Builder API Reference", "ec2": "Amazon EC2 API Reference"}


def model_doc(shape: str, quote: str, service: str = "imagebuilder") -> Source:
    """A quote from the documentation of a shape or member in botocore's service model."""
    return Source(f"{_SERVICE_TITLES[service]}, {shape} (botocore {service} model)", quote, shape, service)


@dataclass(frozen=True)
class NoOptions:
    """For rules without options."""


@dataclass(frozen=True)
class Violation:
    """What a rule reports: where in the canonical model, and what is wrong.

    ``severity`` lowers or raises this one finding from the rule's default (a best
    practice inside a rule about failures); a severity set in config overrides it.
    """

    path: str
    message: str
    severity: Severity | None = None


class RuleContext:
    """What a rule may know besides the configuration itself."""

    def __init__(
        self,
        account: str | None = None,
        spell=None,
        region: str | None = None,
        *,
        in_request: bool = True,
        facts: FactStore | None = None,
        undefined_members=None,
    ) -> None:
        self.account = account  # the owning account: from the ARN, else owner-account in config
        self.region = region  # the configuration's own region: from the ARN, else owner-region
        # True when the document is what an author sends to create or update the
        # configuration (input JSON, CloudFormation, Terraform); False for what the API
        # returned (a live scan, saved get-distribution-configuration output).
        self.in_request = in_request
        self.unverified: list[tuple[str, str]] = []
        self.notes: dict[str, dict[str, str]] = {}  # pointer -> label -> text, for reports
        self.facts = facts  # account context; None when the scan has no AWS access
        self._spell = spell
        # Members the author's format does not define, as its source found them against
        # that format's own schema (CloudFormation); None: judge by the API model.
        self.undefined_members: tuple[UndefinedMember, ...] | None = undefined_members

    def is_own_account(self, value: Any) -> bool | None:
        """Whether an account id is the configuration's own: True, False, or None (unknown)."""
        return self._is_own(value, self.account, OWN_ACCOUNT)

    def is_own_region(self, value: Any) -> bool | None:
        """Whether a region is the configuration's own: True, False, or None (unknown)."""
        return self._is_own(value, self.region, OWN_REGION)

    @staticmethod
    def _is_own(value: Any, own: str | None, meaning: str) -> bool | None:
        if isinstance(value, Unresolved):
            return True if value.refers_to == meaning else None
        if not isinstance(value, str) or own is None:
            return None
        return value == own

    def owner_note(self) -> str:
        """A clause for messages whose verdict depends on an owner account nobody declared."""
        return "" if self.account else " (the owner account is unknown: declare it with owner-account)"

    def spell(self, member: str) -> str:
        """An API member name as the author of this source writes it (for messages)."""
        return self._spell(member) if self._spell else member

    def cannot_verify(self, path: str, reason: str) -> None:
        """Record a check skipped because the value at ``path`` is unresolved or a fact is unknown."""
        self.unverified.append((path, reason))

    def fact(self, key: FactKey) -> Fact:
        """An account-context fact (fetched once per run); only rules that declare ``facts`` ask."""
        if self.facts is None:
            raise RuntimeError("account context is not available in this scan")
        return self.facts.get(key)

    def note(self, pointer: str, label: str, text: str) -> None:
        """Record a fact about the object at ``pointer`` for reports (the HTML's by-resource view)."""
        self.notes.setdefault(pointer, {})[label] = text


class Rule:
    """Base class of every rule. Subclasses declare metadata as class attributes.

    The class docstring is the user-facing help (``ib-audit explain``) and must have
    *Why*, *Example* and *Fix* sections.
    """

    id: ClassVar[str]
    slug: ClassVar[str]
    severity: ClassVar[Severity]
    summary: ClassVar[str]  # one line, used as SARIF shortDescription
    tags: ClassVar[tuple[str, ...]] = ()  # SARIF rule tags; "security" makes GitHub rank by security-severity
    help_url: ClassVar[str | None] = None  # a plugin rule's own documentation page
    Options: ClassVar[type] = NoOptions
    # The documented AWS facts the rule rests on; a policy rule says so in its Why instead.
    sources: ClassVar[tuple[Source, ...]] = ()
    # Set on a retired id: why it was retired and what replaced it. The id stays
    # registered so that it is never reused; configuring it is a warning.
    retired: ClassVar[str | None] = None
    # The kinds of account-context facts the rule reads (``auditor.context``). A rule
    # with any runs only when the scan has AWS access ("needs AWS context").
    facts: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: Any = None) -> None:
        self.options = options if options is not None else self.Options()

    def check(self, config: Mapping[str, Any], ctx: RuleContext) -> Iterator[Violation]:
        """The violations in one configuration.

        Judge ``config`` alone: a large scan audits its files in several processes
        (``--jobs``), so what one call saw of another configuration may be in another
        process. A check across configurations belongs in ``auditor_session_finish``.
        """
        raise NotImplementedError

    def requests(self, config: Mapping[str, Any], ctx: RuleContext) -> Iterable[FactKey]:
        """The facts ``check`` will ask for, so the engine can fetch them all in parallel first."""
        return ()

    @classmethod
    def needs_aws_context(cls) -> bool:
        return bool(cls.facts)

    # -- metadata helpers ---------------------------------------------------------
    @classmethod
    def help_text(cls) -> str:
        import inspect

        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def help_sections(cls) -> dict[str, str]:
        """Split the docstring into its lead paragraph and *Why/Example/Fix* sections."""
        text = cls.help_text()
        parts = re.split(r"^(Why|Example|Fix):\s*$", text, flags=re.MULTILINE)
        sections = {"summary": parts[0].strip()}
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            sections[name.lower()] = _dedent(body).strip("\n").rstrip()
        return sections

    @classmethod
    def help_uri(cls) -> str | None:
        """The rule's documentation page: ``help_url`` if set, the built-in catalog for
        the built-in pack, else None (a plugin's rule is not documented in ours)."""
        if cls.help_url:
            return cls.help_url
        if cls.__module__.startswith(BUILTIN_RULES_PACKAGE + "."):
            return f"{PROJECT_URL}/blob/main/docs/rules.md#{cls.id.lower()}-{cls.slug}"
        return None

    @classmethod
    def option_fields(cls) -> list[OptionField]:
        # Resolving the annotations is slow and every run asks for each rule's fields.
        cached = _OPTION_FIELDS.get(cls.Options)
        if cached is None:
            cached = _OPTION_FIELDS[cls.Options] = cls._option_fields()
        return list(cached)

    @classmethod
    def _option_fields(cls) -> list[OptionField]:
        hints = typing.get_type_hints(cls.Options)
        return [
            OptionField(
                name=f.name.replace("_", "-"),
                attr=f.name,
                type=hints[f.name],
                default=f.default if f.default is not dataclasses.MISSING else f.default_factory(),
                help=f.metadata.get("help", ""),
                minimum=f.metadata.get("minimum"),
            )
            for f in dataclasses.fields(cls.Options)
        ]


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text)


_OPTION_FIELDS: dict[type, list[OptionField]] = {}


@dataclass(frozen=True)
class OptionField:
    name: str  # kebab-case, as written in config
    attr: str
    type: Any
    default: Any
    help: str
    minimum: int | None = None  # below it, every value would fire (config rejects it)

    @property
    def type_name(self) -> str:
        return _type_name(self.type)


def option(default: Any, help: str, *, minimum: int | None = None) -> Any:
    """Declare a rule option with its default and a one-line help.

    ``minimum`` is the least value that makes sense for an integer bound: a maximum
    below the floor the rule itself enforces would make every value fire.
    """
    metadata = {"help": help, "minimum": minimum}
    if isinstance(default, (list, tuple)):
        value = tuple(default)
        return dataclasses.field(default_factory=lambda: value, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        return "list of strings"
    if tp is bool:
        return "boolean"
    if tp is int:
        return "integer"
    if tp is str:
        return "string"
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    return str(tp)


def coerce_option(field: OptionField, value: Any) -> Any:
    """Check a config value against an option's type; raise ValueError naming the problem."""
    tp = field.type
    if typing.get_origin(tp) in (tuple, list):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a list of strings, got {value!r}")
        return tuple(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        return value
    raise ValueError(f"unsupported option type {tp!r}")  # pragma: no cover - rule bug


def make_options(rule: type[Rule], values: Mapping[str, Any]) -> Any:
    """Build a rule's options from already-coerced kebab-case values."""
    by_name = {f.name: f for f in rule.option_fields()}
    return rule.Options(**{by_name[k].attr: v for k, v in values.items()})
