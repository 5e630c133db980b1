"""Running rules over targets and turning violations into findings."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from auditor import apimodel
from auditor.config import Settings, is_enabled, matches
from auditor.globs import PathGlobs
from auditor.identity import SemanticKeys, disambiguate
from auditor.model import (
    AuditResult,
    Finding,
    InputError,
    Notice,
    Scenario,
    Suppression,
    Target,
    Unverified,
    evolve,
    fingerprint,
    parent_pointer,
    value_at,
)
from auditor.plugins import PluginHost
from auditor.rule import Rule, RuleContext, make_options
from auditor.suppress import InlineSuppressions, inline_entries

if TYPE_CHECKING:
    from auditor.context import FactKey, FactStore
    from auditor.snippets import SnippetMaker

log = logging.getLogger("ib_audit")


@dataclass(frozen=True)
class RuleSpec:
    """A rule as configured for this run: the class, its plugin, severity and options."""

    rule: type[Rule]
    plugin: str
    severity: object  # Severity
    instance: Rule
    severity_configured: bool = False  # set in config: overrides per-finding severities too

    @property
    def id(self) -> str:
        return self.rule.id


def configure_rules(host: PluginHost, settings: Settings) -> list[RuleSpec]:
    selected = settings.selected([rule for _, rule in host.rules()])
    specs = []
    for plugin, rule in host.rules():
        if rule.retired or not is_enabled(rule, settings, selected):
            continue
        setting = settings.rules.get(rule.id)
        configured = setting is not None and setting.severity is not None
        severity = setting.severity if configured else rule.severity
        try:
            instance = rule(make_options(rule, setting.options if setting else {}))
        except Exception as exc:
            host.errors.append(InputError(f"plugin {plugin}", f"rule {rule.id} could not be set up: {exc}"))
            continue
        specs.append(RuleSpec(rule, plugin, severity, instance, configured))
    return sorted(specs, key=lambda s: s.id)


class PathIgnores:
    """``per-path-ignores``: rules switched off for files matching a glob, as suppressions
    of kind ``config`` (the findings stay in JSON and SARIF, and never fail the gate)."""

    def __init__(self, settings: Settings) -> None:
        base = settings.base_dir or Path.cwd()
        self.entries = [(PathGlobs([g], base), g, selectors) for g, selectors in settings.per_path_ignores.items()]
        self.source = settings.config_file or "the configuration"

    def for_file(self, file: str | None) -> list[tuple[str, tuple[str, ...]]]:
        if not file:
            return []
        return [(glob, selectors) for globs, glob, selectors in self.entries if globs.first_match(file)]

    def suppression(self, applicable, rule: type[Rule]) -> Suppression | None:
        for glob, selectors in applicable:
            if any(matches(s, rule) for s in selectors):
                return Suppression("config", f'per-path-ignores "{glob}" in {self.source}')
        return None


def audit(
    host: PluginHost,
    specs: Sequence[RuleSpec],
    targets: Sequence[Target],
    errors: Sequence[InputError],
    settings: Settings,
    scanned: Sequence[str] = (),
    report_options: dict | None = None,
    today: date | None = None,
    facts: FactStore | None = None,
) -> AuditResult:
    """Run every rule over every loaded target and build the result (see :class:`Audit`)."""
    run = Audit(host, specs, settings, today=today, facts=facts, targets=targets)
    run.add(targets)
    return run.finish(targets, errors, scanned=scanned, report_options=report_options)


class Audit:
    """One run of the rules, fed target by target, so a scan can drop each file's text,
    positions and configurations once its findings are made (``add``); ``finish``
    builds the result from what is left.

    Each finding's fingerprint is its rule, its target's resource identity and the
    semantic key of its path (``auditor.identity``), made unique within the scan.
    Suppressions apply in this order: the authors' inline ones (unless
    ``--no-inline-suppressions``), ``per-path-ignores``, then plugins' ``auditor_suppress``.
    Rules that need account context run only when ``facts`` is given (a scan with AWS
    access); the facts they request for ``targets`` are fetched first, in parallel, each once.
    """

    def __init__(
        self,
        host: PluginHost,
        specs: Sequence[RuleSpec],
        settings: Settings,
        *,
        today: date | None = None,
        facts: FactStore | None = None,
        targets: Sequence[Target] = (),
    ) -> None:
        self.host, self.settings, self.today, self.facts = host, settings, today, facts
        if facts is None:
            offline = [s for s in specs if not s.rule.needs_aws_context()]
            if len(offline) < len(specs):
                log.info("%d rule(s) need AWS context and did not run", len(specs) - len(offline))
            specs = offline
        else:
            facts.prefetch(_requested(specs, targets, settings, facts))
        self.specs = list(specs)
        self.findings: list[Finding] = []
        self.unverified: list[Unverified] = []
        self.tool_errors: list[InputError] = []
        self.warnings: list[Notice] = list(settings.warnings)
        self.notes: dict[str, dict[str, dict[str, str]]] = {}
        self.rule_ids = {rule.id for _, rule in host.rules()}
        self.enabled = {spec.id for spec in self.specs}
        self.path_ignores = PathIgnores(settings) if settings.per_path_ignores else None
        self._plugin_suppress = host.implements("auditor_suppress")

    def add(self, targets: Sequence[Target]) -> list[Target]:
        """Audit these targets (every file's, in the order loaded) and return those audited.

        A file's targets stay under the same bound as in ``add_file``: past
        ``MAX_PER_FILE`` findings the rest of that file is not audited, and is left out of
        the list returned. (An account-context scan audits every file only once all are
        loaded, so it comes here; a live configuration is its own "file".)
        """
        kept: list[Target] = []
        for file, group in itertools.groupby(targets, key=_file_of):
            kept.extend(self._audit_file(list(group), file))
        return kept

    def add_file(
        self,
        targets: Sequence[Target],
        file: str,
        text: str,
        *,
        snippets: SnippetMaker | None = None,
        keep_configs: bool = False,
    ) -> list[Target]:
        """Audit one file's targets while the scan holds its text, give their findings the
        lines around them (``snippets``), and return the targets slimmed to what reports
        need (``Target.slim``): the text, positions and scenarios can then be freed, so
        memory stays bounded by the largest file, not the number of files."""
        first = len(self.findings)
        targets = self._audit_file(targets, file)
        if snippets is not None and len(self.findings) > first:
            lines = next((_text_lines(t) for t in targets if _text_lines(t) is not None), None)
            self.findings[first:] = snippets.attach(self.findings[first:], file, text, lines)
        return [t.slim(keep_configs) for t in targets]

    def _audit_file(self, targets: Sequence[Target], file: str) -> Sequence[Target]:
        """Audit one file's targets; those after the one that passed ``MAX_PER_FILE`` are
        not audited, and not returned."""
        first = len(self.findings)
        for index, target in enumerate(targets):
            before = len(self.findings)
            self._audit_target(target)
            if len(self.findings) - first > MAX_PER_FILE:
                return self._stop_file(targets, index, first, before - first, file)
        return targets

    def _stop_file(
        self, targets: Sequence[Target], index: int, first: int, earlier: int, file: str
    ) -> Sequence[Target]:
        """Keep a file's first ``MAX_PER_FILE`` findings (``earlier`` of them from the
        configurations before ``targets[index]``, the one that passed the bound); the
        rest of the file is one error saying what is missing."""
        del self.findings[first + MAX_PER_FILE :]
        kept = MAX_PER_FILE - earlier
        cut = targets[index].id
        left = len(targets) - index - 1
        self.tool_errors.append(
            InputError(
                file,
                f"more than {MAX_PER_FILE:,} findings in this file: only the first {MAX_PER_FILE:,} are reported "
                + (f"({kept:,} of {cut}'s)" if kept else f"(none of {cut}'s)")
                + (f", and the {left:,} configuration(s) after it were not audited" if left else ""),
            )
        )
        return targets[: index + 1]

    def take(self) -> tuple:
        """What the audit recorded since the last ``take``, removed from it: a worker
        process of a parallel scan sends this to the parent after each file."""
        recorded = (self.findings, self.unverified, self.tool_errors, self.warnings, self.notes, self.host.errors)
        self.findings, self.unverified, self.tool_errors, self.warnings, self.notes = [], [], [], [], {}
        self.host.errors = []
        return recorded

    def put(self, recorded: tuple) -> None:
        """Add what a worker's ``take`` returned, as if this audit had recorded it."""
        findings, unverified, tool_errors, warnings, notes, host_errors = recorded
        self.findings.extend(findings)
        self.unverified.extend(unverified)
        self.tool_errors.extend(tool_errors)
        self.warnings.extend(warnings)
        for target, pointers in notes.items():
            _add_notes(self.notes.setdefault(target, {}), pointers)
        self.host.errors.extend(host_errors)

    def _audit_target(self, target: Target) -> None:
        scenarios = target.variants()
        if not scenarios:
            return
        settings, host = self.settings, self.host
        inline = None
        if settings.inline_suppressions:
            entries = inline_entries(target)
            if entries:
                inline = InlineSuppressions(
                    target,
                    entries,
                    rule_ids=self.rule_ids,
                    enabled=self.enabled,
                    require_reason=settings.require_reason,
                    today=self.today,
                )
        path_ignores = self.path_ignores
        ignored = path_ignores.for_file(target.origin.file) if path_ignores else []
        plugin_suppress = self._plugin_suppress

        def suppress(finding: Finding, rule: type[Rule]) -> Finding:
            suppression = inline.match(finding) if inline is not None else None
            if suppression is None and ignored:
                suppression = path_ignores.suppression(ignored, rule)  # type: ignore[union-attr]
            if suppression is None and plugin_suppress:
                suppression = host.suppress(finding, target)
            return finding if suppression is None else evolve(finding, suppressed=suppression)

        self.unverified.extend(Unverified(target.id, ALL_RULES, path, reason) for path, reason in target.unverified)
        if not target.literal:
            self.unverified.extend(_unresolved_objects(target, scenarios))
        keys = _LazyKeys(scenarios)
        account, region, in_request = _owner(target, settings, self.facts)

        def context(scenario: Scenario) -> RuleContext:
            ctx = RuleContext(account, target.spell, region, in_request=in_request, facts=self.facts)
            ctx.undefined_members = scenario.undefined
            return ctx

        only = scenarios[0] if len(scenarios) == 1 else None
        shared = context(only) if only is not None else None
        for spec in self.specs:
            if only is not None:
                # One context serves every rule of the target; what a rule leaves in it is
                # taken and replaced before the next.
                notes = _run_rule_once(
                    spec, target, only, keys, shared, suppress, self.findings, self.unverified, self.tool_errors
                )
                if shared.unverified:
                    shared.unverified = []
                if shared.notes:
                    shared.notes = {}
            else:
                notes = _run_rule(
                    spec, target, scenarios, keys, context, suppress, self.findings, self.unverified, self.tool_errors
                )
            if notes:
                _add_notes(self.notes.setdefault(target.id, {}), notes)
        if inline is not None:
            self.warnings.extend(inline.warnings)
            if settings.report_unused_suppressions:
                self.warnings.extend(inline.unused())

    def finish(
        self,
        targets: Sequence[Target],
        errors: Sequence[InputError],
        *,
        scanned: Sequence[str] = (),
        report_options: dict | None = None,
    ) -> AuditResult:
        """The result: every finding ordered and its fingerprint made unique in the scan."""
        settings, host = self.settings, self.host
        all_errors = [
            *settings.errors,
            *(InputError(t.id, t.error) for t in targets if t.error is not None),
            *errors,
            *self.tool_errors,
            *host.errors,
        ]
        ordered = sorted(_dedupe(self.findings), key=Finding.sort_key)
        self.findings = []
        unique = disambiguate([(f.fingerprint, f.target, f.message) for f in ordered])
        ordered = [
            f if fp == f.fingerprint else evolve(f, fingerprint=fp) for f, fp in zip(ordered, unique, strict=True)
        ]
        result = AuditResult(
            targets=tuple(targets),
            findings=tuple(ordered),
            errors=tuple(all_errors),
            unverified=tuple(self.unverified),
            rules=tuple(self.specs),
            fail_on=settings.fail_on,
            scanned=tuple(scanned),
            config_file=settings.config_file,
            report_options=report_options or {},
            warnings=tuple(sorted(self.warnings, key=_notice_order)),
            facts=self.notes,
        )
        host.session_finish(result)
        return result


def _file_of(target: Target) -> str:
    """What ``Audit.add`` bounds findings by: the target's file (a live one: itself)."""
    return target.origin.file if target.origin.file is not None else target.id


def _text_lines(target: Target):
    """The line index a target's source map already built for its file, if any."""
    spans = target.source_map.spans if target.source_map is not None else None
    return getattr(spans, "lines", None)


class _LazyKeys:
    """The semantic keys of each scenario, built when a rule first reports in it."""

    def __init__(self, scenarios: Sequence[Scenario]) -> None:
        self.scenarios = scenarios
        self.keys: list[SemanticKeys | None] = [None] * len(scenarios)

    def __getitem__(self, index: int) -> SemanticKeys:
        keys = self.keys[index]
        if keys is None:
            keys = self.keys[index] = SemanticKeys(self.scenarios[index].config)
        return keys


_V = TypeVar("_V", bound=Hashable)

# The rule id of a "could not verify" entry that no single rule owns.
ALL_RULES = "*"

# What one rule may report in one configuration (and scenario): findings, and checks it
# could not verify. A real configuration stays far below it, but a small hostile file
# does not: 200,000 malformed account ids in 2 MB were 200,000 findings, 32 s and 480 MB,
# and the 20 MB file limit allows ten times that. Past it the rule is stopped (its
# generator is not read on) and the configuration gets an error: the run fails as
# incomplete (exit 2), never passing on what was not reported.
MAX_PER_RULE = 1000
READ_PER_RULE = MAX_PER_RULE + 1  # read one more to know there are more
# What one file may report. Under the bound above a 20 MB file could still hold 2,000
# configurations of 900 malformed accounts each: 1.8 million findings, about 4 GB and
# five minutes. Past this the file's findings stop, with an error (exit 2); a real file,
# even an estate's snapshot of a few thousand configurations, reports far fewer.
MAX_PER_FILE = 10_000


def _cut(spec, target: Target, violations: list, tool_errors) -> None:
    """A rule yielded more than ``MAX_PER_RULE`` (callers read one more, inline: this runs
    for every rule and configuration): keep the first, and say so."""
    del violations[MAX_PER_RULE:]
    tool_errors.append(_too_many(spec, target, "findings"))


def _too_many(spec, target: Target, what: str) -> InputError:
    return InputError(
        target.id,
        f"rule {spec.id} has more than {MAX_PER_RULE:,} {what} in this configuration; "
        f"only the first {MAX_PER_RULE:,} are reported and the rule stopped there",
    )


def _bounded_unverified(spec, target: Target, entries: list, tool_errors) -> list:
    unique = list(dict.fromkeys(entries))
    if len(unique) > MAX_PER_RULE:
        del unique[MAX_PER_RULE:]
        tool_errors.append(_too_many(spec, target, "checks it could not verify"))
    return unique


def _run_rule(spec, target: Target, scenarios, keys, context, suppress, findings, unverified, tool_errors) -> dict:
    """One rule over every scenario of a target; a finding seen in only some says when.

    Findings merge across scenarios by the meaning of their path (a distribution by its
    region), so one that moves in the list when a conditional distribution is left out
    is still one finding. Returns the notes the rule left for reports (``ctx.notes``).
    """
    noted: dict[str, dict[str, list[tuple[int, str]]]] = {}  # semantic key -> label -> (scenario, text)
    pointers: dict[str, str] = {}  # semantic key -> the pointer it was first noted at
    hits: dict[tuple[str, str], list[int]] = {}
    paths: dict[tuple[str, str], str] = {}
    severities: dict[tuple[str, str], object] = {}
    skipped: dict[tuple[str, str], list[int]] = {}
    for index, scenario in enumerate(scenarios):
        ctx = context(scenario)
        try:
            violations = list(islice(spec.instance.check(scenario.config, ctx), READ_PER_RULE))
        except Exception as exc:
            tool_errors.append(
                InputError(target.id, f"rule {spec.id} (plugin {spec.plugin}) raised {type(exc).__name__}: {exc}")
            )
            return {}
        if len(violations) == READ_PER_RULE:
            _cut(spec, target, violations, tool_errors)
        for pointer, labels in ctx.notes.items():
            key = keys[index](pointer)
            pointers.setdefault(key, pointer)
            for label, text in labels.items():
                noted.setdefault(key, {}).setdefault(label, []).append((index, text))
        for v in violations:
            merged = (keys[index](v.path), v.message)
            paths.setdefault(merged, v.path)
            severities.setdefault(merged, v.severity)
            _note(hits, merged, index)
        for path, reason in _bounded_unverified(spec, target, ctx.unverified, tool_errors):
            _note(skipped, (path, reason), index)
    notes: dict[str, dict[str, str]] = {}
    if noted:
        where = distribution_pointers(scenarios, keys)
        for key, labels in noted.items():
            merged = notes.setdefault(where.get(key, pointers[key]), {})
            for label, text in _noted_by_branch(labels, scenarios).items():
                # Two distributions at one pointer (each only in some branches): both, each
                # with when it holds.
                merged[label] = f"{merged[label]}; {text}" if label in merged else text
    if not hits and not skipped:
        return notes
    for (key, message), where in hits.items():
        path = paths[(key, message)]
        when = condition_qualifier(scenarios, where)
        severity = severities[(key, message)]
        provenance = _provenance(scenarios, where, path, message) if any(scenarios[i].provenance for i in where) else ()
        finding = Finding(
            rule_id=spec.id,
            rule=spec.rule.slug,
            # A severity set in config wins over the one a rule gives a finding.
            severity=severity if severity is not None and not spec.severity_configured else spec.severity,
            message=_annotate(message, when, provenance),
            target=target.id,
            path=path,
            location=target.locate(path, scenarios[where[0]].source_map),
            # A finding that holds only under some conditions is its own finding: a baseline
            # entry for one branch must not hide the other.
            fingerprint=fingerprint(spec.id, target.identity if when is None else f"{target.identity}\0{when}", key),
            key=key,
        )
        findings.append(suppress(finding, spec.rule))
    for (path, reason), where in skipped.items():
        when = condition_qualifier(scenarios, where)
        unverified.append(Unverified(target.id, spec.id, path, _annotate(reason, when, ())))
    return notes


def distribution_pointers(scenarios: Sequence[Scenario], keys=None) -> dict[str, str]:
    """The one pointer by which reports name each distribution of a template's scenarios
    (its semantic key -> ``/distributions/N``), where conditions move it in the list.

    The scenario with the most distributions gives its pointers (so that no two of them
    share one); a distribution it lacks takes its first pointer in another scenario that
    is still free, else shares one. Notes (``RuleContext.note``) are stored, and the
    HTML's by-resource rows look them up, by these pointers.
    """
    keys = keys if keys is not None else _LazyKeys(scenarios)
    lists = [s.config.get("distributions") if isinstance(s.config, dict) else None for s in scenarios]
    sizes = [len(items) if isinstance(items, list) else 0 for items in lists]
    found: dict[str, list[str]] = {}
    for index in sorted(range(len(scenarios)), key=lambda i: -sizes[i]):  # stable: first of the largest
        for position in range(sizes[index]):
            pointer = f"/distributions/{position}"
            found.setdefault(keys[index](pointer), []).append(pointer)
    out: dict[str, str] = {}
    taken: set[str] = set()
    for key, pointers in found.items():
        pointer = next((p for p in pointers if p not in taken), pointers[0])
        out[key] = pointer
        taken.add(pointer)
    return out


def _noted_by_branch(labels: dict[str, list[tuple[int, str]]], scenarios: Sequence[Scenario]) -> dict[str, str]:
    """A distribution's notes across a template's scenarios (the same distribution may sit
    at another index in each): one text where every scenario noted it alike, else each
    text with when it holds, as findings say it: one branch's fact (its key's state)
    never reads as the distribution's."""
    out = {}
    for label, texts in labels.items():
        branches = by_branch(texts, scenarios)
        out[label] = "; ".join(text if when is None else f"{text} ({when})" for when, text in branches)
    return out


def _run_rule_once(
    spec, target: Target, scenario: Scenario, keys, ctx: RuleContext, suppress, findings, unverified, tool_errors
) -> dict:
    """``_run_rule`` for a target with one scenario (every JSON file, most templates):
    the same findings, without the bookkeeping that merges scenarios."""
    try:
        violations = list(islice(spec.instance.check(scenario.config, ctx), READ_PER_RULE))
    except Exception as exc:
        tool_errors.append(
            InputError(target.id, f"rule {spec.id} (plugin {spec.plugin}) raised {type(exc).__name__}: {exc}")
        )
        return {}
    if len(violations) == READ_PER_RULE:
        _cut(spec, target, violations, tool_errors)
    if violations:
        semantic = keys[0]
        seen: set[tuple[str, str]] = set()
        for v in violations:
            key = semantic(v.path)
            if (key, v.message) in seen:
                continue
            seen.add((key, v.message))
            message = v.message
            if scenario.provenance:
                message = _annotate(message, None, _provenance((scenario,), (0,), v.path, message))
            severity = v.severity
            finding = Finding(
                rule_id=spec.id,
                rule=spec.rule.slug,
                severity=severity if severity is not None and not spec.severity_configured else spec.severity,
                message=message,
                target=target.id,
                path=v.path,
                location=target.locate(v.path, scenario.source_map),
                fingerprint=fingerprint(spec.id, target.identity, key),
                key=key,
            )
            findings.append(suppress(finding, spec.rule))
    if ctx.unverified:
        for path, reason in _bounded_unverified(spec, target, ctx.unverified, tool_errors):
            unverified.append(Unverified(target.id, spec.id, path, reason))
    return ctx.notes


def _unresolved_objects(target: Target, scenarios) -> list[Unverified]:
    """Objects a source could not resolve hide every check inside them: list each once."""
    seen: dict[tuple[str, str], list[int]] = {}
    for index, scenario in enumerate(scenarios):
        for path, shape, value in apimodel.unresolved_objects(dict(scenario.config)):
            what = target.spell(shape) if target.spell else shape
            _note(seen, (path, f"{what} is {value.expression}: no check inside it could run"), index)
    return [
        Unverified(target.id, ALL_RULES, path, _annotate(reason, condition_qualifier(scenarios, where), ()))
        for (path, reason), where in seen.items()
    ]


def _add_notes(into: dict[str, dict[str, str]], notes: dict[str, dict[str, str]]) -> None:
    """Add a rule's notes (pointer -> label -> text) to ``into``; a later label wins."""
    for pointer, labels in notes.items():
        into.setdefault(pointer, {}).update(labels)


def _note(into: dict, key, index: int) -> None:
    where = into.setdefault(key, [])
    if not where or where[-1] != index:
        where.append(index)


def _annotate(message: str, when: str | None, notes: Sequence[str]) -> str:
    parts = ([when] if when else []) + list(notes)
    return f"{message} ({'; '.join(parts)})" if parts else message


MAX_NOTES = 3


def _provenance(scenarios: Sequence[Scenario], where: Sequence[int], path: str, message: str) -> list[str]:
    """Where the values a finding rests on came from (parameter defaults, variables...).

    A value counts when it sits at the finding's pointer or above it (a list that came
    from a parameter holds the entry a finding names), when the message quotes it (a
    region that came from a parameter's default), or when it removed a member of the
    object the finding names (a key left out under a condition or by a null variable).
    """
    notes: list[str] = []
    for index in where:
        config = scenarios[index].config
        for pointer, note in scenarios[index].provenance.items():
            value, present = value_at(config, pointer)
            related = (
                pointer == path
                or path.startswith(pointer + "/")
                or (present and isinstance(value, str) and len(value) > 2 and value in message)
                or (not present and parent_pointer(pointer) == path)
            )
            if related and note not in notes:
                notes.append(note)
    if len(notes) > MAX_NOTES:
        notes[MAX_NOTES:] = [f"and {len(notes) - MAX_NOTES} more resolved value(s)"]
    return notes


def by_branch(values: Iterable[tuple[int, _V]], scenarios: Sequence[Scenario]) -> list[tuple[str | None, _V]]:
    """Each distinct value of ``(scenario index, value)`` pairs, in first-seen order, with
    when it holds (``condition_qualifier``: None for a value every scenario has). Reports
    show a template's branches with it, so that no branch's value reads as the value."""
    where: dict[_V, list[int]] = {}
    for index, value in values:
        where.setdefault(value, []).append(index)
    return [(condition_qualifier(scenarios, indexes), value) for value, indexes in where.items()]


def condition_qualifier(scenarios: Sequence[Scenario], where: Sequence[int]) -> str | None:
    """ "when condition Public is true" for the scenarios in ``where``; None when it is all of them.

    Greedy cover by the fewest condition literals that select only scenarios in
    ``where`` (up to three literals per alternative; beyond that a scenario is named by
    its full assignment). Sets of scenarios are bit masks: templates repeat this for
    every finding of every resource.
    """
    if len(set(where)) >= len(scenarios):
        return None
    chosen = 0
    for index in where:
        chosen |= 1 << index
    masks: dict[tuple[str, bool], int] = {}
    for index, scenario in enumerate(scenarios):
        for literal in scenario.conditions:
            masks[literal] = masks.get(literal, 0) | (1 << index)
    everything = (1 << len(scenarios)) - 1

    def selects(literals) -> int:
        mask = everything
        for literal in literals:
            mask &= masks[literal]
        return mask

    cubes: list[tuple[tuple[str, bool], ...]] = []
    covered = 0
    for index in sorted(set(where)):
        if covered >> index & 1:
            continue
        literals = scenarios[index].conditions
        best = literals
        for size in range(1, min(len(literals), 3) + 1):
            fits = [c for c in itertools.combinations(literals, size) if selects(c) & ~chosen == 0]
            if fits:
                # The widest cover first; among equals, prefer "is true".
                best = max(fits, key=lambda c: (bin(selects(c) & ~covered).count("1"), sum(v for _n, v in c)))
                break
        cubes.append(best)
        covered |= selects(best)
    return ", or ".join(
        "when " + " and ".join(f"condition {name} is {'true' if value else 'false'}" for name, value in cube)
        for cube in cubes
    )


def _notice_order(notice: Notice) -> tuple:
    loc = notice.location
    span = loc.span if loc is not None else None
    where = (loc.file or loc.arn or "") if loc is not None else (notice.input or "")
    # Stable: warnings at one place keep the order their entries are written in.
    return (where, span.start_line if span else 0, span.start_column if span else 0)


def _owner(target: Target, settings: Settings, facts: FactStore | None) -> tuple[str | None, str | None, bool]:
    """The owner account and region a rule may assume, and whether the document is a request.

    The ARN is evidence; the owner declared in config fills in what a file lacks, and
    with ``--aws-context`` the credentials' account and region fill in the rest."""
    origin = target.origin
    account = origin.account or settings.owner_account
    region = origin.region or settings.owner_region
    if facts is not None:
        account = account or facts.home_account
        region = region or facts.home_region
    return account, region, not origin.is_response


def _rule_context(target: Target, settings: Settings, facts: FactStore | None) -> RuleContext:
    account, region, in_request = _owner(target, settings, facts)
    return RuleContext(account, target.spell, region, in_request=in_request, facts=facts)


def _requested(
    specs: Sequence[RuleSpec], targets: Sequence[Target], settings: Settings, facts: FactStore
) -> list[FactKey]:
    """What the context rules will ask for. A rule that fails here still asks in ``check``
    (facts are then fetched on demand), where its error is reported."""
    keys: list[FactKey] = []
    for target in targets:
        if target.config is None:
            continue
        for spec in specs:
            if not spec.rule.needs_aws_context():
                continue
            try:
                keys.extend(spec.instance.requests(target.config, _rule_context(target, settings, facts)))
            except Exception as exc:
                log.info("%s: rule %s could not list its facts: %s: %s", target.id, spec.id, type(exc).__name__, exc)
    return keys


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per (rule, target, path, message): a rule may reach a value twice."""
    seen = set()
    out = []
    for f in findings:
        key = (f.rule_id, f.target, f.path, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
