"""AWS Security Finding Format (ASFF): findings as Security Hub imports them.

The ``asff`` report is the ``Findings`` list of a ``BatchImportFindings`` request (so
``aws securityhub batch-import-findings --findings file://FILE`` takes it as it is, in
slices of 100), and the ``--security-hub`` sink sends the same objects. Choices, with
the AWS documentation they follow ("AWS Security Finding Format (ASFF)", "BatchImportFindings
for finding providers"):

- ``Id`` is the finding's fingerprint, the identity SARIF and baselines use: a rerun
  updates the finding instead of creating a duplicate.
- ``ProductArn`` is the account's default product,
  ``arn:<partition>:securityhub:<region>:<account>:product/<account>/default`` (the
  custom-integration product every account with Security Hub has); ``ProductName`` and
  ``CompanyName`` are ours, which a custom integration may set, so the console can filter
  on them.
- ``GeneratorId`` is ``ib-audit/<rule id>``; the sink finds its earlier findings by that
  prefix.
- Severity and Types go both at the top level (read on creation) and in
  ``FindingProviderFields`` (the provider's own copy, which is what a provider may update).
- The resource is the configuration (``Type: Other``: ASFF has no Image Builder type), by
  ARN for live targets; ``Details.Other`` carries the distribution details.
- A suppressed finding stays ``FAILED`` (the configuration still fails the check) and is
  created with ``Workflow.Status: SUPPRESSED`` and a note giving the reason.

A finding is filed under its configuration's own account and region. Configurations read
from files have neither unless the file is a saved API response with an ARN; for them the
report needs ``--asff-account`` and ``--asff-region`` (where you will import the file), and
without those it fails with one line naming the configurations, rather than invent an
account.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from auditor import __version__, controls
from auditor.model import AuditResult, Finding, Severity, Target, value_at
from auditor.reporting import ReportError, TargetTags, target_tags

SCHEMA_VERSION = "2018-10-08"
PRODUCT_NAME = "ib-audit"
GENERATOR_PREFIX = "ib-audit/"
BASE_TYPE = "Software and Configuration Checks"
RESOURCE_TYPE = "Other"
SUPPRESSED_FIELD = "ib-audit/Suppressed"
LABELS = {
    Severity.CRITICAL: "CRITICAL",
    Severity.HIGH: "HIGH",
    Severity.MEDIUM: "MEDIUM",
    Severity.LOW: "LOW",
    Severity.INFO: "INFORMATIONAL",
}
# Resource.Partition accepts only these (botocore's Partition enum); others are left out.
ASFF_PARTITIONS = frozenset({"aws", "aws-cn", "aws-us-gov", "aws-us-iso", "aws-us-iso-b"})
# Region prefixes of the non-commercial partitions (AWS's partitions.json), for
# configurations whose region is known but whose ARN is not.
REGION_PARTITIONS = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-isof-", "aws-iso-f"),
    ("eusc-", "aws-eusc"),
)
ACCOUNT_RE = re.compile(r"^\d{12}$")
# Length limits from the ASFF documentation (botocore's validator checks types, not these).
MAX_TITLE = 256
MAX_DESCRIPTION = 1024
MAX_REMEDIATION = 512
MAX_NOTE = 512
MAX_REQUIREMENTS = 32
MAX_OTHER_VALUE = 1024
MAX_TAGS = 50


@dataclass(frozen=True)
class Placement:
    """Where Security Hub files a finding: the account, region and partition of its hub."""

    account: str
    region: str
    partition: str

    @property
    def product_arn(self) -> str:
        """The account's default product (the custom integration every hub accepts)."""
        return f"arn:{self.partition}:securityhub:{self.region}:{self.account}:product/{self.account}/default"


def partition_of(region: str) -> str:
    for prefix, partition in REGION_PARTITIONS:
        if region.startswith(prefix):
            return partition
    return "aws"


def placement(target: Target, account: str | None = None, region: str | None = None) -> Placement | None:
    """The hub a target's findings go to: its own account and region, else the given ones."""
    origin = target.origin
    own_account, own_region = origin.account, origin.region
    if own_account and own_region:
        partition = origin.arn.split(":")[1] if origin.arn and origin.arn.startswith("arn:") else None
        return Placement(own_account, own_region, partition or partition_of(own_region))
    if account and region:
        return Placement(account, region, partition_of(region))
    return None


def timestamp(moment: datetime | None = None) -> str:
    """An ASFF timestamp: UTC, millisecond precision, ``Z`` suffix."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _compact(value: Any) -> str:
    return _clip(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str), MAX_OTHER_VALUE)


def _details(finding: Finding, target: Target | None) -> dict[str, str]:
    """Resource.Details.Other: the configuration's name, its distributions and the value found.

    For a template with conditions whose branches differ, each of the last three gives
    every branch's text after when it holds ("when condition IsProd is true: ..."), as
    the finding's own message does: one branch's value never reads as the value.
    """
    other = {"Path": finding.path or "/", "Location": _clip(finding.location.display(), MAX_OTHER_VALUE)}
    config = target.config if target is not None else None
    if target is not None:
        other["Name"] = _clip(target.name, MAX_OTHER_VALUE)
        if target.origin.file:
            other["File"] = _clip(target.origin.file, MAX_OTHER_VALUE)
    if isinstance(config, Mapping):
        scenarios = target.scenarios if target is not None and len(target.scenarios) > 1 else ()
        branches = [s.config for s in scenarios] or [config]
        distributions = [c.get("distributions") for c in branches]
        if any(isinstance(d, list) for d in distributions):
            regions = [
                ",".join(str(d.get("region")) for d in ds if isinstance(d, Mapping) and "region" in d)
                if isinstance(ds, list)
                else ""
                for ds in distributions
            ]
            other["DistributionRegions"] = _per_branch(regions, scenarios)
            other["Distributions"] = _per_branch([_compact(d) for d in distributions], scenarios)
        other["Value"] = _per_branch([_value_text(c, finding.path, bool(scenarios)) for c in branches], scenarios)
    return other


def _value_text(config: Mapping, path: str, branches: bool) -> str:
    value, exact = value_at(config, path)
    # A branch without the member says so (alone, the nearest value that exists stands).
    return "(not set)" if branches and not exact else _compact(value)


def _per_branch(texts: list[str], scenarios) -> str:
    """One text when every branch has it; else each distinct one after when it holds."""
    if len(set(texts)) == 1:
        return _clip(texts[0], MAX_OTHER_VALUE)
    from auditor.engine import by_branch  # only templates whose branches differ get here

    branches = by_branch(enumerate(texts), scenarios)
    return _clip("; ".join(f"{when}: {text}" for when, text in branches), MAX_OTHER_VALUE)


def _tags(tags: TargetTags) -> dict[str, str] | None:
    """Resource.Tags: only tags every branch of a template sets alike (``target_tags``)."""
    literal = {k[:128]: v[:256] for k, v in tags.common.items()}
    return dict(list(literal.items())[:MAX_TAGS]) or None


def _tags_text(tags: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in tags.items()) or "(none)"


def resource_id(target: Target | None, finding: Finding) -> str:
    """The configuration's ARN for live targets, else its file-based id."""
    return target.identity if target is not None else finding.target


def finding_types(rule: Any) -> list[str]:
    types = [BASE_TYPE]
    for control in controls.controls_for(rule):
        if control.framework.asff_type not in types:
            types.append(control.framework.asff_type)
    return types


def build(
    finding: Finding,
    rule: Any,
    target: Target | None,
    where: Placement,
    now: str,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One ASFF finding. ``previous`` (the same Id as Security Hub holds it) keeps
    ``CreatedAt`` and ``FirstObservedAt`` as they were first recorded."""
    label = LABELS[finding.severity]
    severity = {"Label": label, "Original": finding.severity.label}
    types = finding_types(rule)
    sections = rule.help_sections()
    resource: dict[str, Any] = {
        "Type": RESOURCE_TYPE,
        "Id": resource_id(target, finding),
        "Region": (target.origin.region if target is not None and target.origin.region else where.region),
        "Details": {"Other": _details(finding, target)},
    }
    if where.partition in ASFF_PARTITIONS:
        resource["Partition"] = where.partition
    if target is not None:
        tagged = target_tags(target)
        tags = _tags(tagged)
        if tags:
            resource["Tags"] = tags
        if tagged.branches:  # what only some branches set: said with when, as values are
            resource["Details"]["Other"]["Tags"] = _clip(
                "; ".join(f"{when}: {_tags_text(t)}" for when, t in tagged.branches), MAX_OTHER_VALUE
            )
    compliance: dict[str, Any] = {"Status": "FAILED"}
    requirements = controls.requirements_for(rule)[:MAX_REQUIREMENTS]
    if requirements:
        compliance["RelatedRequirements"] = requirements
    product_fields = {
        "ProviderName": PRODUCT_NAME,
        "ProviderVersion": __version__,
        "ib-audit/RuleId": finding.rule_id,
        "ib-audit/Rule": finding.rule,
        "ib-audit/Path": finding.path or "/",
    }
    out: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding.fingerprint,
        "ProductArn": where.product_arn,
        "ProductName": PRODUCT_NAME,
        "CompanyName": PRODUCT_NAME,
        "GeneratorId": GENERATOR_PREFIX + finding.rule_id,
        "AwsAccountId": where.account,
        "Types": types,
        "CreatedAt": (previous or {}).get("CreatedAt", now),
        "UpdatedAt": now,
        "FirstObservedAt": (previous or {}).get("FirstObservedAt", now),
        "LastObservedAt": now,
        "Severity": severity,
        "FindingProviderFields": {"Severity": severity, "Types": types},
        "Title": _clip(f"{finding.rule_id} {rule.summary}", MAX_TITLE),
        "Description": _clip(finding.message, MAX_DESCRIPTION),
        "Remediation": {
            "Recommendation": {"Text": _clip(sections.get("fix", rule.summary), MAX_REMEDIATION)}
            | ({"Url": rule.help_uri()} if rule.help_uri() else {})
        },
        "ProductFields": product_fields,
        "Resources": [resource],
        "Compliance": compliance,
        "RecordState": "ACTIVE",
    }
    if finding.suppressed is not None:
        reason = f"{finding.suppressed.kind}: {finding.suppressed.reason}"
        product_fields[SUPPRESSED_FIELD] = _clip(reason, 2048)
        # Taken on creation only: afterwards the workflow is the customer's (the sink
        # updates it with BatchUpdateFindings).
        out["Workflow"] = {"Status": "SUPPRESSED"}
        out["Note"] = {"Text": suppression_note(finding), "UpdatedBy": PRODUCT_NAME, "UpdatedAt": now}
    return out


def suppression_note(finding: Finding) -> str:
    assert finding.suppressed is not None
    return _clip(f"Suppressed in ib-audit ({finding.suppressed.kind}): {finding.suppressed.reason}", MAX_NOTE)


def rules_by_id(result: AuditResult) -> dict[str, Any]:
    return {spec.id: spec.rule for spec in result.rules}


def build_all(
    result: AuditResult,
    now: str,
    account: str | None = None,
    region: str | None = None,
    targets: Sequence[Target] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every finding of the result as ASFF, and the targets that have no placement."""
    by_id = {t.id: t for t in (targets if targets is not None else result.targets)}
    rules = rules_by_id(result)
    out, unplaced = [], []
    for f in result.findings:
        target = by_id.get(f.target)
        rule = rules.get(f.rule_id)
        if target is None or rule is None:
            continue
        where = placement(target, account, region)
        if where is None:
            unplaced.append(target.id)
            continue
        out.append(build(f, rule, target, where, now))
    missing = set(unplaced)
    return out, [t for t in by_id if t in missing]  # in the order the targets were read


def write(result: AuditResult, stream: TextIO) -> None:
    """The ``asff`` report: a JSON list of findings, ready for BatchImportFindings."""
    options = result.report_options
    findings, unplaced = build_all(result, timestamp(), options.get("asff_account"), options.get("asff_region"))
    if unplaced:
        shown = ", ".join(unplaced[:3]) + (f" and {len(unplaced) - 3} more" if len(unplaced) > 3 else "")
        raise ReportError(
            f"{len(unplaced)} configuration(s) have no AWS account or region ({shown}); "
            "pass --asff-account ID and --asff-region REGION to say where Security Hub should file them"
        )
    json.dump(findings, stream, indent=2, ensure_ascii=False)
    stream.write("\n")
