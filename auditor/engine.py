"""Running rules over targets and turning violations into findings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.config import Settings, is_enabled, matches
from auditor.globs import PathGlobs
from auditor.identity import SemanticKeys, disambiguate
from auditor.model import AuditResult, Finding, InputError, Notice, Suppression, Target, Unverified, fingerprint
from auditor.plugins import PluginHost
from auditor.rule import Rule, RuleContext, make_options
from auditor.suppress import InlineSuppressions, inline_entries

if TYPE_CHECKING:
    from auditor.context import FactKey, FactStore

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
    """Run every rule over every loaded target and build the result.

    Each finding's fingerprint is its rule, its target's resource identity and the
    semantic key of its path (``auditor.identity``), made unique within the scan.
    Suppressions apply in this order: the authors' inline ones (unless
    ``--no-inline-suppressions``), ``per-path-ignores``, then plugins' ``auditor_suppress``.
    Rules that need account context run only when ``facts`` is given (a scan with AWS
    access); the facts they request are fetched first, in parallel, each once.
    """
    findings: list[Finding] = []
    unverified: list[Unverified] = []
    tool_errors: list[InputError] = []
    warnings: list[Notice] = list(settings.warnings)
    notes: dict[str, dict[str, dict[str, str]]] = {}
    if facts is None:
        offline = [s for s in specs if not s.rule.needs_aws_context()]
        if len(offline) < len(specs):
            log.info("%d rule(s) need AWS context and did not run", len(specs) - len(offline))
        specs = offline
    else:
        facts.prefetch(_requested(specs, targets, settings, facts))
    rule_ids = {rule.id for _, rule in host.rules()}
    enabled = {spec.id for spec in specs}
    path_ignores = PathIgnores(settings) if settings.per_path_ignores else None
    for target in targets:
        if target.config is None:
            continue
        keys = SemanticKeys(target.config)
        identity = target.identity
        inline = None
        if settings.inline_suppressions:
            inline = InlineSuppressions(
                target,
                inline_entries(target),
                rule_ids=rule_ids,
                enabled=enabled,
                require_reason=settings.require_reason,
                today=today,
            )
        ignored_here = path_ignores.for_file(target.origin.file) if path_ignores else []
        for spec in specs:
            ctx = _rule_context(target, settings, facts)
            try:
                violations = list(spec.instance.check(target.config, ctx))
            except Exception as exc:
                tool_errors.append(
                    InputError(target.id, f"rule {spec.id} (plugin {spec.plugin}) raised {type(exc).__name__}: {exc}")
                )
                continue
            for v in violations:
                key = keys(v.path)
                finding = Finding(
                    rule_id=spec.id,
                    rule=spec.rule.slug,
                    # A severity set in config wins over the one a rule gives a finding.
                    severity=v.severity if v.severity is not None and not spec.severity_configured else spec.severity,
                    message=v.message,
                    target=target.id,
                    path=v.path,
                    location=target.locate(v.path),
                    fingerprint=fingerprint(spec.id, identity, key),
                    key=key,
                )
                suppression = inline.match(finding) if inline is not None else None
                if suppression is None and ignored_here:
                    suppression = path_ignores.suppression(ignored_here, spec.rule)  # type: ignore[union-attr]
                if suppression is None:
                    suppression = host.suppress(finding, target)
                if suppression is not None:
                    finding = replace(finding, suppressed=suppression)
                findings.append(finding)
            unverified.extend(Unverified(target.id, spec.id, path, reason) for path, reason in ctx.unverified)
            for pointer, labels in ctx.notes.items():
                notes.setdefault(target.id, {}).setdefault(pointer, {}).update(labels)
        if inline is not None:
            warnings.extend(inline.warnings)
            if settings.report_unused_suppressions:
                warnings.extend(inline.unused())
    all_errors = [
        *settings.errors,
        *(InputError(t.id, t.error) for t in targets if t.error is not None),
        *errors,
        *tool_errors,
        *host.errors,
    ]
    ordered = sorted(_dedupe(findings), key=Finding.sort_key)
    unique = disambiguate([(f.fingerprint, f.target, f.message) for f in ordered])
    ordered = [f if fp == f.fingerprint else replace(f, fingerprint=fp) for f, fp in zip(ordered, unique, strict=True)]
    result = AuditResult(
        targets=tuple(targets),
        findings=tuple(ordered),
        errors=tuple(all_errors),
        unverified=tuple(unverified),
        rules=tuple(specs),
        fail_on=settings.fail_on,
        scanned=tuple(scanned),
        config_file=settings.config_file,
        report_options=report_options or {},
        warnings=tuple(sorted(warnings, key=_notice_order)),
        facts=notes,
    )
    host.session_finish(result)
    return result


def _notice_order(notice: Notice) -> tuple:
    loc = notice.location
    span = loc.span if loc is not None else None
    where = (loc.file or loc.arn or "") if loc is not None else (notice.input or "")
    # Stable: warnings at one place keep the order their entries are written in.
    return (where, span.start_line if span else 0, span.start_column if span else 0)


def _rule_context(target: Target, settings: Settings, facts: FactStore | None) -> RuleContext:
    """The ARN is evidence; the owner declared in config fills in what a file lacks, and
    with ``--aws-context`` the credentials' account and region fill in the rest."""
    origin = target.origin
    account = origin.account or settings.owner_account
    region = origin.region or settings.owner_region
    if facts is not None:
        account = account or facts.home_account
        region = region or facts.home_region
    return RuleContext(account, target.spell, region, in_request=not origin.is_response, facts=facts)


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
