"""``ib-audit merge``: combine JSON reports of several runs into one result.

Shards, accounts or regions scanned separately come back together here, and any
reporter can be written from the merged result. A target that appears in two inputs
is an error naming both (an overlapping or repeated shard), never counted twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from auditor.engine import RuleSpec
from auditor.model import (
    AuditResult,
    Finding,
    InputError,
    Location,
    Notice,
    Origin,
    Severity,
    Span,
    Suppression,
    Target,
    Unverified,
)
from auditor.rule import Rule


def _stand_in(rule_id: str, slug: str) -> type[Rule]:
    """A rule class for an id whose plugin is not installed where the merge runs."""
    doc = f"{rule_id} ({slug}), from a plugin not installed here.\n\nWhy:\n  Unknown.\n\nExample:\n  -\n\nFix:\n  -\n"
    return type(
        f"Merged{rule_id}",
        (Rule,),
        {
            "__doc__": doc,
            "id": rule_id,
            "slug": slug,
            "severity": Severity.MEDIUM,
            "summary": f"{rule_id} from another installation",
        },
    )


def _location(d: dict[str, Any]) -> Location:
    span = None
    if "start_line" in d:
        span = Span(
            d["start_line"], d.get("start_column", 1), d.get("end_line", d["start_line"]), d.get("end_column", 1)
        )
    return Location(file=d.get("file"), span=span, arn=d.get("arn"))


def merge_reports(files: Sequence[Path], known_rules: dict[str, tuple[str, type[Rule]]]) -> AuditResult:
    targets: dict[str, Target] = {}
    owner: dict[str, str] = {}
    findings: list[Finding] = []
    errors: list[InputError] = []
    unverified: list[Unverified] = []
    warnings: list[Notice] = []
    fixed: list[dict] = []
    rules: dict[str, RuleSpec] = {}
    scanned: list[str] = []
    fail_on: Severity | None = Severity.LOW
    shards: dict[int, dict[int, str]] = {}  # N -> K -> file
    pairs: dict[str, str] = {}
    for index, file in enumerate(files):
        name = str(file)
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("version") != 1 or "targets" not in doc:
                raise ValueError("not an ib-audit JSON report (version 1)")
            if index == 0:
                label = doc.get("summary", {}).get("fail_on", "low")
                fail_on = None if label == "never" else Severity.parse(label)
            duplicates = set()
            for t in doc["targets"]:
                if t["id"] in targets:
                    errors.append(InputError(name, f"target {t['id']} was already merged from {owner[t['id']]}"))
                    duplicates.add(t["id"])
                    continue
                owner[t["id"]] = name
                targets[t["id"]] = Target(
                    id=t["id"],
                    name=t["name"],
                    origin=Origin(**t["origin"]),
                    error=t.get("error"),
                    recorded_identity=t.get("identity") if isinstance(t.get("identity"), str) else None,
                )
            for f in doc["findings"]:
                if f["target"] in duplicates:
                    continue
                s = f.get("suppressed")
                findings.append(
                    Finding(
                        rule_id=f["rule_id"],
                        rule=f["rule"],
                        severity=Severity.parse(f["severity"]),
                        message=f["message"],
                        target=f["target"],
                        path=f["path"],
                        location=_location(f["location"]),
                        fingerprint=f["fingerprint"],
                        suppressed=Suppression(s["kind"], s["reason"]) if s else None,
                        baseline_state=f.get("baseline_state"),
                        key=f.get("key", ""),
                    )
                )
            errors.extend(InputError(e["input"], e["message"]) for e in doc["errors"] if e["input"] not in duplicates)
            unverified.extend(Unverified(**u) for u in doc.get("unverified", []) if u["target"] not in duplicates)
            warnings.extend(
                Notice(w["kind"], w["message"], _location(w["location"]) if "location" in w else None, w.get("input"))
                for w in doc.get("warnings", [])
            )
            fixed.extend(doc.get("fixed", []))
            coverage = doc.get("coverage") or {}
            if coverage.get("shard"):
                k, n = (int(x) for x in str(coverage["shard"]).split("/"))
                if k in shards.setdefault(n, {}):
                    errors.append(InputError(name, f"shard {k}/{n} was already merged from {shards[n][k]}"))
                shards[n].setdefault(k, name)
            for pair in coverage.get("pairs") or []:
                if pair in pairs and pairs[pair] != name:
                    errors.append(InputError(name, f"account/region {pair} was already covered by {pairs[pair]}"))
                pairs.setdefault(pair, name)
            scanned.extend(doc.get("scanned", []))
            for r in doc.get("rules", []):
                if r["id"] not in rules:
                    plugin, rule = known_rules.get(r["id"], ("merged", None))
                    rule = rule or _stand_in(r["id"], r.get("slug", r["id"]))
                    rules[r["id"]] = RuleSpec(rule, plugin, Severity.parse(r["severity"]), rule())
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            errors.append(InputError(name, f"cannot merge: {detail}"))
    for n, seen in sorted(shards.items()):
        for k in range(1, n + 1):
            if k not in seen:
                errors.append(
                    InputError("merge", f"shard {k}/{n} is missing: its accounts and regions were not scanned")
                )
    # Error targets carry their own error; the input errors list repeats them once.
    target_errors = [InputError(t.id, t.error) for t in targets.values() if t.error is not None]
    seen = set(target_errors)
    other = [e for e in errors if e not in seen]
    return AuditResult(
        targets=tuple(sorted(targets.values(), key=lambda t: t.id)),
        findings=tuple(sorted(findings, key=Finding.sort_key)),
        errors=tuple(target_errors + other),
        unverified=tuple(unverified),
        rules=tuple(sorted(rules.values(), key=lambda s: s.id)),
        fail_on=fail_on,
        scanned=tuple(dict.fromkeys(scanned)),
        fixed=tuple(fixed),
        warnings=tuple(warnings),
        report_options={"coverage": {"shard": None, "pairs": sorted(pairs)} if pairs else None},
    )
