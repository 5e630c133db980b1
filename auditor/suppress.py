"""Built-in finding filter: suppressions carried by the target itself.

- the resource tag ``ib-audit:ignore`` = ``IBD001,IBD009`` (any source: the tag lives
  in the canonical ``tags``), optionally with a reason after a colon:
  ``IBD001:key is managed by the landing zone``;
- inline suppressions a source found (CloudFormation Metadata, Terraform comments).
"""

from __future__ import annotations

from auditor.hookspecs import hookimpl
from auditor.model import Finding, InlineSuppression, Suppression, Target

TAG = "ib-audit:ignore"


def tag_suppressions(target: Target) -> tuple[InlineSuppression, ...]:
    tags = (target.config or {}).get("tags")
    if not isinstance(tags, dict) or not isinstance(tags.get(TAG), str):
        return ()
    out = []
    for item in tags[TAG].split(","):
        rule_id, _, reason = item.strip().partition(":")
        if rule_id:
            out.append(InlineSuppression(rule_id.strip().upper(), "tag", reason.strip() or f"tag {TAG}"))
    return tuple(out)


@hookimpl
def auditor_suppress(finding: Finding, target: Target) -> Suppression | None:
    for entry in (*target.suppressions, *tag_suppressions(target)):
        if entry.rule_id in (finding.rule_id, "ALL", "all"):
            return Suppression(entry.kind, entry.reason)
    return None
