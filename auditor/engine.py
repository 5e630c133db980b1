"""Running rules over targets and turning violations into findings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from auditor.config import Settings, is_enabled
from auditor.model import AuditResult, Finding, InputError, Target, Unverified, fingerprint
from auditor.plugins import PluginHost
from auditor.rule import Rule, RuleContext, make_options


@dataclass(frozen=True)
class RuleSpec:
    """A rule as configured for this run: the class, its plugin, severity and options."""

    rule: type[Rule]
    plugin: str
    severity: object  # Severity
    instance: Rule

    @property
    def id(self) -> str:
        return self.rule.id


def configure_rules(host: PluginHost, settings: Settings) -> list[RuleSpec]:
    specs = []
    for plugin, rule in host.rules():
        if not is_enabled(rule, settings):
            continue
        setting = settings.rules.get(rule.id)
        severity = setting.severity if setting and setting.severity is not None else rule.severity
        try:
            instance = rule(make_options(rule, setting.options if setting else {}))
        except Exception as exc:
            host.errors.append(InputError(f"plugin {plugin}", f"rule {rule.id} could not be set up: {exc}"))
            continue
        specs.append(RuleSpec(rule, plugin, severity, instance))
    return sorted(specs, key=lambda s: s.id)


def audit(
    host: PluginHost,
    specs: Sequence[RuleSpec],
    targets: Sequence[Target],
    errors: Sequence[InputError],
    settings: Settings,
    scanned: Sequence[str] = (),
    report_options: dict | None = None,
) -> AuditResult:
    """Run every rule over every loaded target and build the result."""
    findings: list[Finding] = []
    unverified: list[Unverified] = []
    tool_errors: list[InputError] = []
    for target in targets:
        if target.config is None:
            continue
        for spec in specs:
            ctx = RuleContext(account=target.origin.account, spell=target.spell, region=target.origin.region)
            try:
                violations = list(spec.instance.check(target.config, ctx))
            except Exception as exc:
                tool_errors.append(
                    InputError(target.id, f"rule {spec.id} (plugin {spec.plugin}) raised {type(exc).__name__}: {exc}")
                )
                continue
            for v in violations:
                finding = Finding(
                    rule_id=spec.id,
                    rule=spec.rule.slug,
                    severity=spec.severity,
                    message=v.message,
                    target=target.id,
                    path=v.path,
                    location=target.locate(v.path),
                    fingerprint=fingerprint(spec.id, target.identity, v.path),
                )
                suppression = host.suppress(finding, target)
                if suppression is not None:
                    finding = replace(finding, suppressed=suppression)
                findings.append(finding)
            unverified.extend(Unverified(target.id, spec.id, path, reason) for path, reason in ctx.unverified)
    all_errors = [
        *settings.errors,
        *(InputError(t.id, t.error) for t in targets if t.error is not None),
        *errors,
        *tool_errors,
        *host.errors,
    ]
    result = AuditResult(
        targets=tuple(targets),
        findings=tuple(sorted(_dedupe(findings), key=Finding.sort_key)),
        errors=tuple(all_errors),
        unverified=tuple(unverified),
        rules=tuple(specs),
        fail_on=settings.fail_on,
        scanned=tuple(scanned),
        config_file=settings.config_file,
        report_options=report_options or {},
    )
    host.session_finish(result)
    return result


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
