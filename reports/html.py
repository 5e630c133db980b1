"""HTML report: one self-contained page for a security reviewer.

Everything the template shows is prepared here as plain data; the template only lays
it out. Jinja2 autoescapes every value, JSON for scripts is embedded with ``<``, ``>``
and ``&`` escaped, and a Content-Security-Policy forbids any network request, so text
from a configuration can never become markup, script or a fetch.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from jinja2 import Environment, PackageLoader, select_autoescape

from auditor import __version__, controls
from auditor.model import AuditResult, Finding, Severity, Target, Unresolved
from auditor.reporting import unverified_groups
from auditor.snippets import SNIPPET_MAX_LINES, clip, snippet_lines

ROWS_PER_CHUNK = 250  # rows per <tbody>; off-screen chunks are skipped by the browser
FINDINGS_PER_CONTROL = 50  # listed under a control; the table's control filter shows all
UNVERIFIED_SHOWN = 50  # configurations listed under one could-not-verify cause; the JSON report has all


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("auditor.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tojson_safe"] = script_json
    return env


def script_json(value: Any) -> str:
    """JSON that is safe inside <script>: no '</script>', '<!--' or '&' can appear."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _reflow(text: str) -> str:
    """Docstring paragraphs as flowing text (blank lines stay paragraph breaks)."""
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n"))


def _value_at(config: Any, pointer: str) -> tuple[Any, bool]:
    """The value at a pointer, or the deepest enclosing value and False."""
    value = config
    for token in pointer.split("/")[1:] if pointer else []:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            return value, False
    return value, True


def _snippet(finding: Finding, target: Target | None) -> dict[str, Any]:
    """The lines around a finding: carried with it (never read here: a merged report
    names files this machine must not open), else its value in the configuration."""
    if finding.snippet is not None:
        return {"kind": "source", "lines": snippet_lines(finding)}
    if target is not None and target.config is not None:
        value, exact = _value_at(target.config, finding.path)
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
        lines = text.splitlines()[:SNIPPET_MAX_LINES]
        return {
            "kind": "json",
            "note": None if exact else "member missing; showing the object that lacks it",
            "lines": [{"number": None, "text": clip(line), "hit": exact} for line in lines],
        }
    return {"kind": "none", "lines": []}


def _shown(values: Any) -> list[str]:
    """Literal entries as they are, unresolved ones marked: never silently dropped."""
    if isinstance(values, Unresolved):
        return [f"{values} (unresolved)"]
    out = []
    for value in values if isinstance(values, list) else []:
        out.append(f"{value} (unresolved)" if isinstance(value, Unresolved) else str(value))
    return out


def _sharing(target: Target, facts: Mapping[str, Mapping[str, str]]) -> list[dict[str, Any]]:
    """Per distribution: region, who can launch the AMI, which key encrypts it, and what
    the account-context checks found out (key state, who can use the key, block public
    access), keyed by the distribution's pointer."""
    rows = []
    config = target.config or {}
    for index, dist in enumerate(config.get("distributions") or []):
        if not isinstance(dist, dict):
            continue
        noted = [{"label": k, "text": v} for k, v in facts.get(f"/distributions/{index}", {}).items()]
        ami = dist.get("amiDistributionConfiguration")
        container = dist.get("containerDistributionConfiguration")
        if isinstance(ami, dict):
            perm = ami.get("launchPermission") if isinstance(ami.get("launchPermission"), dict) else {}
            who = [
                *[f"group {g}" for g in _shown(perm.get("userGroups"))],
                *[f"account {a}" for a in _shown(perm.get("userIds"))],
                *[f"organization {o}" for o in _shown(perm.get("organizationArns"))],
                *[f"OU {o}" for o in _shown(perm.get("organizationalUnitArns"))],
            ]
            copies = _shown(ami.get("targetAccountIds"))
            key = ami.get("kmsKeyId")
            rows.append(
                {
                    "region": str(dist.get("region", "?")),
                    "kind": "AMI",
                    "facts": noted,
                    "launch": who or ["this account only"],
                    "copies": copies,
                    "key": (f"{key} (unresolved)" if isinstance(key, Unresolved) else str(key))
                    if key is not None
                    else "none (account default)",
                    "public": any(g.lower() == "all" for g in perm.get("userGroups") or [] if isinstance(g, str)),
                }
            )
        elif isinstance(container, dict):
            repo = container.get("targetRepository") if isinstance(container.get("targetRepository"), dict) else {}
            rows.append(
                {
                    "region": str(dist.get("region", "?")),
                    "kind": "container",
                    "facts": noted,
                    "launch": [f"{repo.get('service', '?')} repository {repo.get('repositoryName', '?')}"],
                    "copies": [],
                    "key": "n/a",
                    "public": False,
                }
            )
        else:
            rows.append(
                {
                    "region": str(dist.get("region", "?")),
                    "kind": "AMI (defaults)",
                    "facts": noted,
                    "launch": ["this account only"],
                    "copies": [],
                    "key": "none (account default)",
                    "public": False,
                }
            )
    return rows


NOT_RECORDED = "not recorded in a merged report"


def _recorded_only(facts: Mapping[str, Mapping[str, str]]) -> list[dict[str, Any]]:
    """A merged report has no configurations, only what the JSON reports recorded: one row
    per distribution the account-context checks noted facts about, saying what is unknown
    rather than "none"."""
    rows = []
    for pointer in sorted(facts, key=lambda p: [int(t) if t.isdigit() else -1 for t in p.split("/")[1:]]):
        index = pointer.rsplit("/", 1)[-1]
        rows.append(
            {
                "region": "?",
                "kind": f"distribution {index}" if index.isdigit() else pointer,
                "facts": [{"label": k, "text": v} for k, v in facts[pointer].items()],
                "launch": [NOT_RECORDED],
                "copies": [NOT_RECORDED],
                "key": NOT_RECORDED,
                "public": False,
            }
        )
    unknown = {"region": "?", "kind": "?", "facts": [], "launch": [NOT_RECORDED], "copies": [NOT_RECORDED]}
    return rows or [{**unknown, "key": NOT_RECORDED, "public": False}]


def _by_control(result: AuditResult, active: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per framework, per control the rules that ran evidence: pass/fail counts and findings.

    A configuration fails a control when an unsuppressed finding of one of the control's
    rules is on it, and passes it otherwise (every rule runs on every audited configuration).
    """
    audited = {t.id for t in result.targets if t.status == "audited"}
    mapped: dict[tuple[str, str], list[str]] = {}
    for spec in result.rules:
        for control in controls.controls_for(spec.rule):
            mapped.setdefault((control.framework.key, control.id), []).append(spec.id)
    suppressed = Counter(f.rule_id for f in result.findings if f.suppressed is not None)
    out = []
    for key, framework in controls.table().frameworks.items():
        rows = []
        for cid in framework.controls:
            rules = mapped.get((key, cid))
            if not rules:
                continue
            found = [r for r in active if r["rule_id"] in rules]
            failing = {r["target"] for r in found} & audited
            rows.append(
                {
                    "id": cid,
                    "title": framework.controls[cid],
                    "requirement": framework.requirement(cid),
                    "rules": rules,
                    "status": "fail" if failing else "pass",
                    "passed": len(audited) - len(failing),
                    "failed": len(failing),
                    "suppressed": sum(suppressed[r] for r in rules),
                    "findings": found[:FINDINGS_PER_CONTROL],
                    "more": max(0, len(found) - FINDINGS_PER_CONTROL),
                }
            )
        out.append(
            {"key": key, "title": framework.title, "url": framework.url, "note": framework.note, "controls": rows}
        )
    return out


def prepare(result: AuditResult, generated: datetime | None = None) -> dict[str, Any]:
    """Everything the template shows, as plain data."""
    targets = {t.id: t for t in result.targets}
    rule_help = {}
    for spec in result.rules:
        sections = spec.rule.help_sections()
        rule_help[spec.id] = {
            "id": spec.id,
            "slug": spec.rule.slug,
            "summary": spec.rule.summary,
            "why": _reflow(sections.get("why", "")),
            "example": sections.get("example", ""),
            "fix": _reflow(sections.get("fix", "")),
            "uri": spec.rule.help_uri(),
        }
    rows = []
    for index, f in enumerate(result.findings):
        target = targets.get(f.target)
        rows.append(
            {
                "index": index,
                "severity": f.severity.label,
                "rank": int(f.severity),
                "rule_id": f.rule_id,
                "rule": f.rule,
                "resource": target.name if target else f.target,
                "target": f.target,
                "location": f.location.display(),
                "path": f.path,
                "message": f.message,
                # The anchor is the fingerprint: a link to a finding survives edits of the file.
                "anchor": f"f-{f.fingerprint}",
                "suppressed": None
                if f.suppressed is None
                else {"kind": f.suppressed.kind, "reason": f.suppressed.reason},
                "snippet": _snippet(f, target),
            }
        )
    # A reviewer reads the worst first; the JSON report keeps file order.
    rows.sort(key=lambda r: (-r["rank"], r["location"], r["rule_id"]))
    active = [r for r in rows if r["suppressed"] is None]
    counts = result.counts()
    peak = max(counts.values()) or 1
    by_target = defaultdict(Counter)
    for r in active:
        by_target[r["target"]][r["severity"]] += 1
    resources = [
        {
            "id": t.id,
            "name": t.name,
            "origin": t.origin.as_dict(),
            "status": t.status,
            "error": t.error,
            "sharing": _sharing(t, result.facts.get(t.id, {}))
            if t.config is not None
            else _recorded_only(result.facts.get(t.id, {}))
            if t.error is None
            else [],
            "findings": dict(by_target.get(t.id, {})),
        }
        for t in sorted(
            result.targets, key=lambda t: (t.origin.account or "", t.origin.region or "", t.origin.file or "", t.name)
        )
    ]
    frameworks = _by_control(result, active)
    if result.errors:
        verdict = "incomplete"
    elif result.failed:
        verdict = "fail"
    else:
        verdict = "pass"
    return {
        "version": __version__,
        "generated": (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        "verdict": verdict,
        "fail_on": result.fail_on.label if result.fail_on is not None else "never",
        "scanned": list(result.scanned),
        "config_file": result.config_file,
        "counts": counts,
        "bars": [{"severity": sev, "count": n, "width": round(300 * n / peak)} for sev, n in counts.items()],
        "audited": sum(1 for t in result.targets if t.status == "audited"),
        "inputs": len(result.targets),
        "errors": [{"input": e.input, "message": e.message} for e in result.errors],
        "findings": active,
        "chunks": [active[i : i + ROWS_PER_CHUNK] for i in range(0, len(active), ROWS_PER_CHUNK)],
        "suppressed": [r for r in rows if r["suppressed"] is not None],
        "rules": [rule_help[k] for k in sorted(rule_help)],
        "rule_ids": sorted({r["rule_id"] for r in active}),
        "frameworks": frameworks,
        "control_ids": [
            c["requirement"] for fw in frameworks for c in fw["controls"] if c["failed"]
        ],  # in catalogue order, only those a finding evidences
        "severities": [s.label for s in sorted(Severity, reverse=True)],
        "resources": resources,
        "has_context": bool(result.facts),
        # One cause in front of many configurations is one item (reporting.unverified_groups).
        "unverified": [
            {
                "rule_id": g.rule_id,
                "reason": g.reason,
                "configurations": g.configurations,
                "entries": [{"target": u.target, "path": u.path} for u in g.entries[:UNVERIFIED_SHOWN]],
                "more": max(0, len(g.entries) - UNVERIFIED_SHOWN),
            }
            for g in unverified_groups(result.unverified)
        ],
        "script_data": {
            "counts": counts,
            "total": len(active),
            "verdict": verdict,
            # The control filter keeps the rows of a control's rules (no per-row attribute).
            "control_rules": {c["requirement"]: c["rules"] for fw in frameworks for c in fw["controls"]},
        },
    }


def write(result: AuditResult, stream: TextIO) -> None:
    template = _environment().get_template("report.html.j2")
    stream.write(template.render(report=prepare(result)))
