"""``--security-hub``: live findings into AWS Security Hub, kept in step with reality.

For every (account, region) pair with an audited live configuration, in that account
(assuming the scan's role there for organization scans, because BatchImportFindings only
accepts findings whose AwsAccountId is the caller's own) and in the configuration's own
region:

1. ``GetFindings`` reads the pair's earlier ib-audit findings that are still ACTIVE
   (filtered by the account's default product, the ``ib-audit/`` generator prefix, the
   account and the region; the same conditions are checked again on every answer, so a
   finding-aggregation region that also returns other regions' findings, or an endpoint
   that ignores filters, cannot widen what is touched).
2. ``BatchImportFindings``, in batches of 100, sends this run's findings (same Id as
   before: updated, never duplicated; CreatedAt and FirstObservedAt kept) and, for every
   earlier finding that is fixed, an update to ``Compliance.Status: PASSED`` and
   ``RecordState: ARCHIVED`` (Security Hub then sets the workflow to RESOLVED itself).
   An earlier finding is fixed only when its configuration was audited in this run and
   its rule ran; a configuration that failed to load, was in another shard, or a rule
   that was not selected leaves its findings untouched. An earlier finding whose
   configuration no longer exists is archived as ``NOT_AVAILABLE``, as Security Hub
   archives the findings of a deleted resource ("Evaluating compliance status and control
   status", Security Hub User Guide): only when this run listed that account and region
   completely (no error, no skipped summary) and the configuration's ARN was not in the
   listing. A listing that failed, a shard that did not cover the pair, or an ``--arn``
   scan (no listing) leave those findings untouched. Hubs where this run listed
   configurations but audited none are visited for that alone; one where Security Hub
   is not enabled (``InvalidAccessException``) can hold no earlier finding and is skipped.
3. ``BatchUpdateFindings`` (the customer's API: BatchImportFindings cannot change the
   workflow of an existing finding) marks findings suppressed in ib-audit since the last
   run as SUPPRESSED with the reason as a note, and reopens (NEW) those whose ib-audit
   suppression was removed; a workflow set by people is left alone.

Every call goes through the live scan's retry and pacing (``LiveScanner._call``:
throttling, 5xx and connection errors retried with jittered backoff under a deadline,
one pacer per account). ``FailedFindings`` and ``UnprocessedFindings`` are errors naming
the finding, its rule and configuration. A pair that fails is an error for that pair;
the others go on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from auditor.model import AuditResult, Finding, InputError, Target
from auditor.reports import asff
from auditor.sinks import SinkContext, SinkReport
from auditor.sources.aws import ARN_RE, AwsOptions, FatalAwsError, FetchError, LiveScanner, base_session

log = logging.getLogger("ib_audit.security_hub")

BATCH = 100  # BatchImportFindings and BatchUpdateFindings take at most 100 findings
PAGE = 100  # GetFindings MaxResults
ERRORS_PER_PAIR = 20  # past this, one line says how many more
DELETED_FIELD = "ib-audit/Archived"  # ProductFields: why a finding was archived without a fix
# Kept from the finding Security Hub holds when it is archived as fixed (the rest is
# either provider data we re-send unchanged or customer-owned).
KEPT_ON_FIX = (
    "SchemaVersion",
    "Id",
    "ProductArn",
    "ProductName",
    "CompanyName",
    "GeneratorId",
    "AwsAccountId",
    "CreatedAt",
    "FirstObservedAt",
    "LastObservedAt",
    "Title",
    "Description",
    "Remediation",
    "ProductFields",
    "Resources",
    "FindingProviderFields",
)


class HubCaller(LiveScanner):
    """The live scan's calls (retries, pacing, per-account bound) against Security Hub."""

    def client(self, region: str):
        # The live scan's clients: botocore's retries off (ours apply) and every body
        # checked before botocore parses it. AWS_ENDPOINT_URL_SECURITYHUB /
        # AWS_ENDPOINT_URL apply (boto3 reads them); --endpoint-url is Image Builder's only.
        return self.service_client("securityhub", region)


@dataclass
class Pair:
    """One hub: an account and region, the configurations audited there and their findings."""

    where: asff.Placement
    targets: dict[str, Target] = field(default_factory=dict)  # target id -> target
    identities: set[str] = field(default_factory=set)  # their ARNs, as Resources[0].Id
    findings: list[Finding] = field(default_factory=list)
    # Every configuration ARN this run's complete listing of the pair returned; None when
    # the pair was not listed completely (then nothing is taken to be deleted).
    listed: frozenset[str] | None = None

    @property
    def label(self) -> str:
        return f"security-hub {self.where.account}/{self.where.region}"


@dataclass
class PairOutcome:
    errors: list[InputError] = field(default_factory=list)
    visited: bool = True  # False: a hub without Security Hub and nothing to send there
    imported: int = 0
    new: int = 0
    archived: int = 0
    deleted: int = 0
    suppressed: int = 0
    reopened: int = 0
    rejected: int = 0


def _pairs(result: AuditResult) -> dict[tuple[str, str], Pair]:
    """Audited live configurations grouped by the hub their findings belong to."""
    pairs: dict[tuple[str, str], Pair] = {}
    by_target: dict[str, Pair] = {}
    for target in result.targets:
        origin = target.origin
        if origin.kind != "aws" or target.status != "audited" or not (origin.account and origin.region):
            continue
        where = asff.placement(target)
        assert where is not None
        pair = pairs.setdefault((where.account, where.region), Pair(where))
        pair.targets[target.id] = target
        pair.identities.add(target.identity)
        by_target[target.id] = pair
    for finding in result.findings:
        pair = by_target.get(finding.target)
        if pair is not None:
            pair.findings.append(finding)
    return pairs


def _is_ours(finding: Mapping[str, Any], where: asff.Placement) -> bool:
    """An active earlier ib-audit finding of exactly this hub."""
    return (
        finding.get("ProductArn") == where.product_arn
        and str(finding.get("GeneratorId", "")).startswith(asff.GENERATOR_PREFIX)
        and finding.get("AwsAccountId") == where.account
        and finding.get("Region", where.region) == where.region
        and finding.get("RecordState", "ACTIVE") == "ACTIVE"
    )


def _filters(where: asff.Placement) -> dict[str, list[dict[str, str]]]:
    def eq(value: str) -> list[dict[str, str]]:
        return [{"Value": value, "Comparison": "EQUALS"}]

    return {
        "ProductArn": eq(where.product_arn),
        "GeneratorId": [{"Value": asff.GENERATOR_PREFIX, "Comparison": "PREFIX"}],
        "AwsAccountId": eq(where.account),
        "Region": eq(where.region),
        "RecordState": eq("ACTIVE"),
    }


def _earlier(caller: HubCaller, where: asff.Placement) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    token = None
    while True:
        kwargs: dict[str, Any] = {"Filters": _filters(where), "MaxResults": PAGE}
        if token:
            kwargs["NextToken"] = token
        page = caller._call(where.region, "get_findings", **kwargs)
        for finding in page.get("Findings") or []:
            if isinstance(finding, dict) and _is_ours(finding, where) and isinstance(finding.get("Id"), str):
                found[finding["Id"]] = finding
        token = page.get("NextToken")
        if not token:
            return found


def _resource_of(finding: Mapping[str, Any]) -> str | None:
    resources = finding.get("Resources")
    if isinstance(resources, list) and resources and isinstance(resources[0], dict):
        return resources[0].get("Id")
    return None


def _deleted(earlier: Mapping[str, Any], pair: Pair) -> bool:
    """Whether an earlier finding's configuration is gone: this run listed its account and
    region completely, and its ARN, which names that account and region, was not there."""
    if pair.listed is None:
        return False
    resource = _resource_of(earlier)
    match = ARN_RE.match(resource) if isinstance(resource, str) else None
    return (
        match is not None
        and match.group("account") == pair.where.account
        and match.group("region") == pair.where.region
        and resource not in pair.listed
    )


def _deleted_update(earlier: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The earlier finding, NOT_AVAILABLE and ARCHIVED: what Security Hub does with a
    control's finding when its resource is deleted. Its severity is left as it was."""
    update = {key: earlier[key] for key in KEPT_ON_FIX if key in earlier}
    update["ProductFields"] = {
        **(earlier.get("ProductFields") or {}),
        DELETED_FIELD: f"the distribution configuration no longer exists (not listed on {now})",
    }
    update["Compliance"] = {**(earlier.get("Compliance") or {}), "Status": "NOT_AVAILABLE"}
    update["RecordState"] = "ARCHIVED"
    update["UpdatedAt"] = now
    return update


def _fixed_update(earlier: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The earlier finding, now PASSED and ARCHIVED (informational, as a passed control is)."""
    update = {key: earlier[key] for key in KEPT_ON_FIX if key in earlier}
    provider = dict(update.get("FindingProviderFields") or {})
    original = (provider.get("Severity") or earlier.get("Severity") or {}).get("Label")
    provider["Severity"] = {"Label": "INFORMATIONAL", **({"Original": original} if original else {})}
    update["FindingProviderFields"] = provider
    update["Compliance"] = {**(earlier.get("Compliance") or {}), "Status": "PASSED"}
    update["RecordState"] = "ARCHIVED"
    update["UpdatedAt"] = now
    return update


def _current(finding: Finding, rule: Any, pair: Pair, now: str, earlier: Mapping[str, Any] | None) -> dict[str, Any]:
    built = asff.build(finding, rule, pair.targets.get(finding.target), pair.where, now, earlier)
    if earlier is not None:
        # After creation these belong to the customer (BatchImportFindings ignores the
        # workflow and note, and a provider should not override severity and types:
        # FindingProviderFields carries ours).
        for key in ("Severity", "Types", "Workflow", "Note"):
            built.pop(key, None)
    return built


def _chunks(items: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _ErrorList:
    """A pair's errors, at most ERRORS_PER_PAIR lines and then one line for the rest."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.items: list[InputError] = []
        self.more = 0

    def add(self, message: str) -> None:
        if len(self.items) < ERRORS_PER_PAIR:
            self.items.append(InputError(self.label, message))
        else:
            self.more += 1

    def done(self) -> list[InputError]:
        if self.more:
            return [*self.items, InputError(self.label, f"... and {self.more} more rejected findings")]
        return self.items


def sync_pair(caller: HubCaller, pair: Pair, rules: Mapping[str, Any], now: str) -> PairOutcome:
    """Import this run's findings of one hub, archive the fixed ones, sync suppressions."""
    outcome = PairOutcome()
    errors = _ErrorList(pair.label)
    where = pair.where
    try:
        earlier = _earlier(caller, where)
    except FetchError as exc:
        if not pair.targets and _not_enabled(exc):
            log.info("%s: Security Hub is not enabled; no earlier finding to archive", pair.label)
            outcome.visited = False
            return outcome
        # Without the earlier findings nothing can be archived safely; import nothing
        # either, so the next run starts from a consistent state.
        outcome.errors.append(InputError(pair.label, f"cannot read earlier findings (GetFindings): {exc}"))
        return outcome

    described: dict[str, str] = {}  # Id -> "IBD002 on <arn>", for error messages
    batch: list[dict[str, Any]] = []
    current_ids = set()
    for finding in pair.findings:
        rule = rules.get(finding.rule_id)
        if rule is None:
            continue
        built = _current(finding, rule, pair, now, earlier.get(finding.fingerprint))
        batch.append(built)
        current_ids.add(finding.fingerprint)
        described[finding.fingerprint] = f"{finding.rule_id} on {built['Resources'][0]['Id']}"
    fixed = [
        e
        for fid, e in earlier.items()
        if fid not in current_ids
        and _resource_of(e) in pair.identities  # its configuration was audited in this run
        and str(e.get("GeneratorId", ""))[len(asff.GENERATOR_PREFIX) :] in rules  # and its rule ran
    ]
    for e in fixed:
        batch.append(_fixed_update(e, now))
        described[e["Id"]] = f"{e['GeneratorId'][len(asff.GENERATOR_PREFIX) :]} on {_resource_of(e)} (fixed)"
    gone = [e for fid, e in earlier.items() if fid not in current_ids and _deleted(e, pair)]
    for e in gone:
        batch.append(_deleted_update(e, now))
        described[e["Id"]] = f"{e['GeneratorId'][len(asff.GENERATOR_PREFIX) :]} on {_resource_of(e)} (deleted)"

    rejected: set[str] = set()
    for chunk in _chunks(batch):
        try:
            answer = caller._call(where.region, "batch_import_findings", Findings=list(chunk))
        except FetchError as exc:
            errors.add(f"BatchImportFindings of {len(chunk)} findings failed: {exc}")
            rejected.update(f["Id"] for f in chunk)
            continue
        for failed in answer.get("FailedFindings") or []:
            fid = failed.get("Id", "?")
            rejected.add(fid)
            errors.add(
                f"finding {fid} ({described.get(fid, 'unknown')}) rejected: "
                f"{failed.get('ErrorCode', '?')}: {failed.get('ErrorMessage', '')}".rstrip(": ")
            )
    outcome.rejected = len(rejected)
    outcome.imported = sum(1 for fid in current_ids if fid not in rejected)
    outcome.new = sum(1 for fid in current_ids if fid not in rejected and fid not in earlier)
    outcome.archived = sum(1 for e in fixed if e["Id"] not in rejected)
    outcome.deleted = sum(1 for e in gone if e["Id"] not in rejected)

    _sync_workflow(caller, pair, earlier, rejected, now, outcome, errors)
    outcome.errors.extend(errors.done())
    return outcome


def _sync_workflow(
    caller: HubCaller,
    pair: Pair,
    earlier: Mapping[str, Mapping[str, Any]],
    rejected: set[str],
    now: str,
    outcome: PairOutcome,
    errors: _ErrorList,
) -> None:
    """Suppressions made or removed in ib-audit since the last run, on existing findings."""
    updates: dict[tuple[str, str], list[str]] = defaultdict(list)  # (status, note) -> Ids
    for finding in pair.findings:
        before = earlier.get(finding.fingerprint)
        if before is None or finding.fingerprint in rejected:
            continue  # new findings were created with their workflow
        status = (before.get("Workflow") or {}).get("Status") or before.get("WorkflowState")
        ours = asff.SUPPRESSED_FIELD in (before.get("ProductFields") or {})
        if finding.suppressed is not None and status != "SUPPRESSED":
            updates[("SUPPRESSED", asff.suppression_note(finding))].append(finding.fingerprint)
        elif finding.suppressed is None and status == "SUPPRESSED" and ours:
            updates[("NEW", "ib-audit: the suppression was removed; the finding is active again")].append(
                finding.fingerprint
            )
    for (status, note), ids in updates.items():
        for chunk in _chunks(ids):
            try:
                answer = caller._call(
                    pair.where.region,
                    "batch_update_findings",
                    FindingIdentifiers=[{"Id": fid, "ProductArn": pair.where.product_arn} for fid in chunk],
                    Workflow={"Status": status},
                    Note={"Text": note, "UpdatedBy": asff.PRODUCT_NAME},
                )
            except FetchError as exc:
                errors.add(f"BatchUpdateFindings (workflow {status}) of {len(chunk)} findings failed: {exc}")
                continue
            unprocessed = answer.get("UnprocessedFindings") or []
            for item in unprocessed:
                fid = (item.get("FindingIdentifier") or {}).get("Id", "?")
                errors.add(
                    f"finding {fid}: workflow {status} not set: {item.get('ErrorCode', '?')}: "
                    f"{item.get('ErrorMessage', '')}".rstrip(": ")
                )
            done = len(chunk) - len(unprocessed)
            if status == "SUPPRESSED":
                outcome.suppressed += done
            else:
                outcome.reopened += done


def _callers(pairs: Iterable[Pair], context: SinkContext) -> tuple[dict[str, HubCaller], list[InputError]]:
    """One caller per account: the scan's own session, or the scan's role in that account."""
    aws: AwsOptions = context.aws or AwsOptions()
    accounts = sorted({p.where.account for p in pairs})
    callers: dict[str, HubCaller] = {}
    errors: list[InputError] = []
    base = base_session(aws.profile)
    for account in accounts:
        session = base
        if context.org is not None:
            from auditor.sources import org

            try:
                session = org.assumed_session(base, account, context.org)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                errors.append(
                    InputError(f"security-hub {account}", f"cannot assume role {context.org.role_name}: {exc}")
                )
                continue
        per_account = context.org.per_account if context.org is not None else None
        callers[account] = HubCaller(aws, session=session, account=account, max_in_flight=per_account)
    return callers, errors


def _not_enabled(exc: FetchError) -> bool:
    """Security Hub answered that it is not enabled for the account in that region."""
    cause = exc.__context__
    return isinstance(cause, botocore.exceptions.ClientError) and (
        cause.response.get("Error", {}).get("Code") == "InvalidAccessException"
    )


def _own_account(pairs: Mapping[tuple[str, str], Pair], listed: Iterable[frozenset[str]], context: SinkContext) -> str:
    """The account of the scan's own credentials: from an ARN it listed, else ``sts:GetCallerIdentity``."""
    arns = [arn for found in listed for arn in found]
    arns += [t.origin.arn for p in pairs.values() for t in p.targets.values() if t.origin.arn]
    match = next((m for m in map(ARN_RE.match, arns) if m), None)
    if match is not None:
        return match.group("account")
    aws: AwsOptions = context.aws or AwsOptions()
    probe = LiveScanner(aws, session=base_session(aws.profile))
    answer = probe._call(probe.session.region_name or "us-east-1", "get_caller_identity", service="sts")
    if not isinstance(answer.get("Account"), str):
        raise FetchError("no Account in the answer")
    return answer["Account"]


def _with_listings(
    pairs: dict[tuple[str, str], Pair], listed: Mapping[tuple[str | None, str], frozenset[str]], context: SinkContext
) -> list[InputError]:
    """Attach this run's complete listings to their hubs, adding the hubs of pairs that were
    listed but had nothing audited (their last configurations may have been deleted)."""
    own = None
    if any(account is None for account, _ in listed):
        try:
            own = _own_account(pairs, [found for (a, _), found in listed.items() if a is None], context)
        except FetchError as exc:
            return [InputError("security-hub", f"cannot tell which account was scanned (sts:GetCallerIdentity): {exc}")]
    for (account, region), found in listed.items():
        key = (account or own, region)
        if key not in pairs:
            pairs[key] = Pair(asff.Placement(key[0], region, asff.partition_of(region)))
        pairs[key].listed = found
    return []


def send(result: AuditResult, context: SinkContext) -> SinkReport:
    """Send the live findings of ``result`` to Security Hub (see the module docstring)."""
    pairs = _pairs(result)
    counts = ("imported", "new", "archived", "deleted", "suppressed", "reopened", "rejected")
    report = SinkReport(summary={"pairs": [], **dict.fromkeys(counts, 0)})
    try:
        report.errors.extend(_with_listings(pairs, context.listed, context))
    except FatalAwsError as exc:
        report.errors.append(InputError("security-hub", str(exc)))
        return report
    if not pairs:
        return report
    now = asff.timestamp()
    rules = asff.rules_by_id(result)
    try:
        callers, errors = _callers(pairs.values(), context)
    except (FatalAwsError, botocore.exceptions.BotoCoreError) as exc:
        report.errors.append(InputError("security-hub", str(exc)))
        return report
    report.errors.extend(errors)
    work = [p for p in pairs.values() if p.where.account in callers]
    workers = max(1, min(len(work), (context.aws.max_workers if context.aws else 16)))
    with ThreadPoolExecutor(workers) as pool:
        futures = {
            pool.submit(sync_pair, callers[p.where.account], p, rules, now): p
            for p in sorted(work, key=lambda p: (p.where.account, p.where.region))
        }
        outcomes = []
        for future, pair in futures.items():
            try:
                outcomes.append((pair, future.result()))
            except FatalAwsError as exc:
                report.errors.append(InputError(pair.label, str(exc)))
    summary = report.summary
    for pair, outcome in outcomes:
        report.errors.extend(outcome.errors)
        if not outcome.visited:
            continue
        summary["pairs"].append(f"{pair.where.account}/{pair.where.region}")
        for key in counts:
            summary[key] += getattr(outcome, key)
    return report
