"""Control mappings: which compliance controls each rule evidences.

The mapping is data (``controls.toml`` beside this module): frameworks with their
control catalogues, and per built-in rule the controls it evidences or the reason it
evidences none. Every view reads it through :func:`controls_for`, so the CLI, SARIF,
ASFF, OCSF and the HTML report can never disagree.

A rule from another package declares its own mappings as a class attribute,
``controls = {"nist-800-53-r5": ("AC-3",)}``, using the framework keys below; an entry in
the table wins for a rule id it names.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Framework:
    """A control framework: its key (as in ``--framework KEY``), title and catalogue."""

    key: str
    title: str
    url: str
    requirement_format: str  # e.g. "NIST.800-53.r5 {control}"
    asff_type: str
    controls: Mapping[str, str]  # control id -> title, in catalogue order
    note: str = ""  # why the catalogue is empty, where it is

    def requirement(self, control: str) -> str:
        """How the control is written in Security Hub's RelatedRequirements."""
        return self.requirement_format.format(control=control)


@dataclass(frozen=True)
class Control:
    """One control of one framework."""

    framework: Framework
    id: str

    @property
    def title(self) -> str:
        return self.framework.controls.get(self.id, "")

    @property
    def requirement(self) -> str:
        return self.framework.requirement(self.id)


@dataclass(frozen=True)
class RuleEntry:
    """What the table says about one rule id."""

    rule_id: str
    controls: Mapping[str, tuple[str, ...]]  # framework key -> control ids
    reason: str
    retired: bool = False


@dataclass(frozen=True)
class ControlTable:
    frameworks: Mapping[str, Framework]
    rules: Mapping[str, RuleEntry] = field(default_factory=dict)

    def framework(self, key: str) -> Framework:
        """The framework for ``key`` (case-insensitive); KeyError names the known ones."""
        found = self.frameworks.get(key.strip().lower())
        if found is None:
            raise KeyError(f"unknown framework {key!r} (known: {', '.join(sorted(self.frameworks))})")
        return found

    def controls_for(self, rule: Any) -> tuple[Control, ...]:
        """The controls a rule (class or id) evidences, in framework then catalogue order."""
        rule_id = rule if isinstance(rule, str) else rule.id
        entry = self.rules.get(rule_id)
        declared = entry.controls if entry is not None else _declared(rule)
        out = []
        for key, framework in self.frameworks.items():
            ids = set(declared.get(key, ()))
            out.extend(Control(framework, cid) for cid in framework.controls if cid in ids)
        return tuple(out)


def _declared(rule: Any) -> Mapping[str, tuple[str, ...]]:
    value = getattr(rule, "controls", None)
    if not isinstance(value, Mapping):
        return {}
    return {str(k): tuple(str(c) for c in v) for k, v in value.items() if isinstance(v, (list, tuple))}


class ControlTableError(ValueError):
    """The mapping table is inconsistent (a bug in the data, caught by the tests)."""


def parse_table(text: str) -> ControlTable:
    """Parse and check the TOML table; every problem is one ControlTableError."""
    doc = tomllib.loads(text)
    frameworks: dict[str, Framework] = {}
    for key, spec in doc.get("frameworks", {}).items():
        try:
            frameworks[key] = Framework(
                key=key,
                title=spec["title"],
                url=spec["url"],
                requirement_format=spec["requirement"],
                asff_type=spec["asff-type"],
                controls=dict(spec.get("controls", {})),
                note=" ".join(spec.get("note", "").split()),
            )
        except KeyError as exc:
            raise ControlTableError(f"framework {key}: missing {exc}") from None
    rules: dict[str, RuleEntry] = {}
    for rule_id, spec in doc.get("rules", {}).items():
        mapped: dict[str, tuple[str, ...]] = {}
        for key, value in spec.items():
            if key in ("reason", "retired"):
                continue
            if key not in frameworks:
                raise ControlTableError(f"rule {rule_id}: unknown framework {key!r}")
            unknown = [c for c in value if c not in frameworks[key].controls]
            if unknown:
                raise ControlTableError(f"rule {rule_id}: {key} has no control {', '.join(unknown)} in its catalogue")
            mapped[key] = tuple(value)
        reason = " ".join(str(spec.get("reason", "")).split())
        if not reason:
            raise ControlTableError(f"rule {rule_id}: every entry needs a reason")
        rules[rule_id] = RuleEntry(rule_id, mapped, reason, bool(spec.get("retired", False)))
    return ControlTable(frameworks, rules)


@functools.cache
def table() -> ControlTable:
    """The built-in table (read once per process)."""
    text = resources.files("auditor").joinpath("controls.toml").read_text(encoding="utf-8")
    return parse_table(text)


def controls_for(rule: Any) -> tuple[Control, ...]:
    """The controls a rule evidences, from the built-in table or the rule's own declaration."""
    return table().controls_for(rule)


def requirements_for(rule: Any) -> list[str]:
    """The controls as Security Hub writes them ("NIST.800-53.r5 AC-3")."""
    return [c.requirement for c in controls_for(rule)]


def missing_entries(rule_ids: Iterable[str]) -> list[str]:
    """Rule ids the table has no entry for (a built-in rule must have one)."""
    return sorted(r for r in rule_ids if r not in table().rules)
