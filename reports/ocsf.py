"""OCSF Compliance Finding events (class 2003), built and validated with py-ocsf-models.

Why Compliance Finding and not Detection Finding (2004): OCSF defines Compliance Finding
as "results of evaluations performed against resources, to check compliance with various
Industry Frameworks or Security Standards such as NIST SP 800-53", which is what a rule
run over a distribution configuration is. It carries a ``compliance`` object (the
standards, the requirements, the check and its Pass/Warning/Fail status), so a data lake
can ask "which NIST controls fail, in which accounts" with one filter. Detection Finding is
for detections and alerts from correlation or detection engines and has no place for a
control or for a check that passed.

Because the class describes evaluations, a check that passed is an event too: one event
per finding (status Fail; suppressed ones with finding status Suppressed), one per
(configuration, rule) that passed, and Warning where the rule could not verify a value
(unresolved in the source) and found nothing else. Inputs that could not be read have no
evaluation and no event; they are errors in the other reports.

Live configurations carry the OCSF ``cloud`` profile (provider, account, region), which
py-ocsf-models models for Detection Finding but not for Compliance Finding, so the class
below adds the profile's attribute with the library's own ``Cloud`` object.

One event per line (JSON Lines), the form log shippers and data-lake loaders read.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, TextIO

from auditor import __version__, controls
from auditor.model import AuditResult, Finding, Severity, Target
from auditor.reporting import ReportError, target_tags
from auditor.rule import PROJECT_URL

try:
    from py_ocsf_models import OCSF_VERSION
    from py_ocsf_models.events.findings.activity_id import ActivityID
    from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding
    from py_ocsf_models.events.findings.compliance_finding_type_id import ComplianceFindingTypeID
    from py_ocsf_models.events.findings.severity_id import SeverityID
    from py_ocsf_models.events.findings.status_id import StatusID
    from py_ocsf_models.objects.account import Account, TypeID
    from py_ocsf_models.objects.check import Check
    from py_ocsf_models.objects.cloud import Cloud
    from py_ocsf_models.objects.compliance import Compliance
    from py_ocsf_models.objects.compliance_status import StatusID as ComplianceStatusID
    from py_ocsf_models.objects.finding_info import FindingInformation
    from py_ocsf_models.objects.metadata import Metadata
    from py_ocsf_models.objects.product import Product
    from py_ocsf_models.objects.remediation import Remediation
    from py_ocsf_models.objects.resource_details import ResourceDetails
except ImportError as exc:  # an optional dependency: say how to get it, in one line
    raise ReportError(f"the ocsf report needs py-ocsf-models ({exc.name}); pip install 'ib-audit[ocsf]'") from None

RESOURCE_TYPE = "AWS::ImageBuilder::DistributionConfiguration"
SEVERITIES = {
    Severity.CRITICAL: SeverityID.Critical,
    Severity.HIGH: SeverityID.High,
    Severity.MEDIUM: SeverityID.Medium,
    Severity.LOW: SeverityID.Low,
    Severity.INFO: SeverityID.Informational,
}
PASS, WARNING, FAIL = ComplianceStatusID.Pass, ComplianceStatusID.Warning, ComplianceStatusID.Fail


class CloudComplianceFinding(ComplianceFinding):
    """A Compliance Finding with OCSF's ``cloud`` profile applied."""

    cloud: Cloud | None = None


def check_uid(rule_id: str, identity: str) -> str:
    """A stable id for one rule's evaluation of one configuration (a passed check has no
    fingerprint: there is no path)."""
    return hashlib.sha256(f"{rule_id}\0{identity}\0check".encode()).hexdigest()[:32]


def _partition(target: Target) -> str | None:
    arn = target.origin.arn
    return arn.split(":")[1] if arn and arn.startswith("arn:") else None


def _resource(target: Target, finding: Finding | None) -> ResourceDetails:
    data: dict[str, object] = {"kind": target.origin.kind}
    if target.origin.file:
        data["file"] = target.origin.file
    if target.origin.resource:
        data["resource"] = target.origin.resource
    if finding is not None:
        data["path"] = finding.path or "/"
        data["location"] = finding.location.display()
    tags = target_tags(target)  # labels only for tags every branch of a template sets alike
    labels = [f"{k}:{v}" for k, v in tags.common.items()]
    if tags.branches:
        data["tags"] = [{"when": when, "tags": branch} for when, branch in tags.branches]
    return ResourceDetails(
        uid=target.identity,
        name=target.name,
        type=RESOURCE_TYPE,
        region=target.origin.region,
        cloud_partition=_partition(target),
        labels=labels or None,
        data=data,
    )


def _cloud(target: Target) -> Cloud | None:
    account = target.origin.account
    if not account:
        return None
    return Cloud(
        provider="AWS",
        region=target.origin.region,
        account=Account(uid=account, name=account, type_id=TypeID.AWS_Account, type="AWS Account"),
    )


class _RuleParts:
    """The parts of an event that depend only on the rule (built once per rule)."""

    def __init__(self, rule: Any, severity: Severity) -> None:
        sections = rule.help_sections()
        mapped = controls.controls_for(rule)
        self.rule = rule
        self.severity = severity
        self.title = f"{rule.id} {rule.summary}"
        self.standards = list(dict.fromkeys(c.framework.title for c in mapped)) or None
        self.requirements = [c.requirement for c in mapped] or None
        self.why = " ".join(sections.get("why", "").split()) or None
        self.remediation = Remediation(
            desc=" ".join(sections.get("fix", rule.summary).split()),
            references=[rule.help_uri()] if rule.help_uri() else None,
        )

    def compliance(self, status: ComplianceStatusID) -> Compliance:
        check = Check(
            uid=self.rule.id,
            name=self.rule.summary,
            desc=self.why,
            severity=self.severity.label,
            severity_id=SEVERITIES[self.severity],
            standards=self.standards,
            status=status.name,
            status_id=status,
        )
        return Compliance(
            checks=[check],
            desc=self.rule.summary,
            requirements=self.requirements,
            standards=self.standards,
            status_id=status,
        )


def _event(
    parts: _RuleParts,
    target: Target,
    status: ComplianceStatusID,
    when: datetime,
    finding: Finding | None = None,
    detail: str | None = None,
) -> CloudComplianceFinding:
    millis = int(when.timestamp() * 1000)
    if finding is not None:
        uid, message = finding.fingerprint, finding.message
        severity = SEVERITIES[finding.severity]
        state = StatusID.Suppressed if finding.suppressed is not None else StatusID.New
    else:
        uid = check_uid(parts.rule.id, target.identity)
        message = detail or f"{parts.rule.id} passed: {parts.rule.summary}"
        # A passed check is informational (as Security Hub rates its passed controls).
        severity = SeverityID.Informational if status is PASS else SEVERITIES[parts.severity]
        state = None
    cloud = _cloud(target)
    unmapped: dict[str, Any] = {"rule_slug": parts.rule.slug, "target": target.id}
    if finding is not None:
        unmapped["fingerprint"] = finding.fingerprint
        if finding.suppressed is not None:
            unmapped["suppressed"] = {"kind": finding.suppressed.kind, "reason": finding.suppressed.reason}
    return CloudComplianceFinding(
        activity_id=ActivityID.Create,
        activity_name=ActivityID.Create.name,
        type_uid=ComplianceFindingTypeID.Create,
        type_name="Compliance Finding: Create",
        class_name="Compliance Finding",
        time=millis,
        time_dt=when,
        severity_id=severity,
        severity=severity.name,
        status_id=state,
        status=state.name if state is not None else None,
        message=message,
        metadata=Metadata(
            version=OCSF_VERSION,
            product=Product(
                name="ib-audit", vendor_name="ib-audit", version=__version__, uid="ib-audit", url_string=PROJECT_URL
            ),
            event_code=parts.rule.id,
            profiles=["cloud"] if cloud is not None else None,
        ),
        finding_info=FindingInformation(
            uid=uid,
            title=parts.title,
            desc=message,
            created_time=millis,
            created_time_dt=when,
            src_url=parts.rule.help_uri(),
        ),
        compliance=parts.compliance(status),
        remediation=parts.remediation if status is not PASS else None,
        resources=[_resource(target, finding)],
        cloud=cloud,
        unmapped=unmapped,
    )


def events(result: AuditResult, when: datetime | None = None) -> list[CloudComplianceFinding]:
    """Every evaluation of the result as an event: failures, warnings and passes."""
    when = when or datetime.now(UTC)
    parts = {spec.id: _RuleParts(spec.rule, spec.severity) for spec in result.rules}
    found: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in result.findings:
        found[(f.target, f.rule_id)].append(f)
    unverified: dict[tuple[str, str], list[str]] = defaultdict(list)
    for u in result.unverified:
        unverified[(u.target, u.rule_id)].append(f"{u.path or '/'}: {u.reason}")
    out = []
    for target in result.targets:
        if target.status != "audited":
            continue
        for rule_id, rule_parts in parts.items():
            key = (target.id, rule_id)
            if found.get(key):
                out.extend(_event(rule_parts, target, FAIL, when, finding=f) for f in found[key])
            elif unverified.get(key) or unverified.get((target.id, "*")):
                # "*": what the source itself could not resolve hides every rule's checks.
                reasons = [*unverified.get(key, ()), *unverified.get((target.id, "*"), ())]
                detail = f"{rule_id} could not verify: " + "; ".join(reasons)
                out.append(_event(rule_parts, target, WARNING, when, detail=detail))
            else:
                out.append(_event(rule_parts, target, PASS, when))
    return out


def write(result: AuditResult, stream: TextIO) -> None:
    """The ``ocsf`` report: one Compliance Finding event per line."""
    for event in events(result):
        stream.write(event.model_dump_json(exclude_none=True))
        stream.write("\n")
