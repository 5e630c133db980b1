"""IBD021 kms-key-not-shared (needs AWS context)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditor.facts import FactKey
from auditor.model import Severity
from auditor.rule import Rule, Source, Violation

from ._context import (
    CROSS_ACCOUNT_GUIDE,
    DISTRIBUTION_ROLE,
    ORG_ARN_RE,
    account_of,
    one_entry_per_reason,
    partition,
    principal_org,
    recipients,
)
from ._walk import KMS_ARN_RE
from .ibd020_kms_key_unusable import key_subjects

if TYPE_CHECKING:
    from auditor.context.policy import Principal

# What EBS asks KMS for when it copies, shares or launches an encrypted AMI on the
# caller's behalf ("Requirements for Amazon EBS encryption", Amazon EBS User Guide:
# kms:CreateGrant, kms:Decrypt, kms:DescribeKey, kms:GenerateDataKeyWithoutPlainText,
# kms:ReEncrypt*), spelled as the actions a policy is evaluated against.
REQUIRED_ACTIONS = (
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:CreateGrant",
    "kms:DescribeKey",
)


class KmsKeyNotShared(Rule):
    """The KMS key of a shared AMI must let every receiving account use it.

    Needs AWS context (``kms:DescribeKey``, ``kms:GetKeyPolicy``, ``kms:ListGrants``;
    ``organizations:DescribeOrganization`` and ``organizations:ListAccounts`` when the
    key policy conditions on ``aws:PrincipalOrgID``).

    Why:
      When Image Builder copies an encrypted AMI into another account, it acts as the
      `EC2ImageBuilderDistributionCrossAccountRole` in that account, which must be able
      to use the key ("Set up cross-account AMI distribution with Image Builder": update
      the key policy to allow destination accounts to use your key). An account,
      organization or OU given launch permission must be allowed to use the key too,
      or its launches fail ("Share an AMI with specific AWS accounts", "Allow
      organizations and OUs to use a KMS key", Amazon EC2 User Guide). EBS needs
      kms:Decrypt, kms:ReEncrypt*, kms:GenerateDataKeyWithoutPlaintext, kms:CreateGrant
      and kms:DescribeKey ("Requirements for Amazon EBS encryption"). The key policy
      and grants are evaluated as AWS does ("Determining access to AWS KMS keys"): an
      explicit Deny wins; an account principal, the role's ARN, or `*` with an
      `aws:PrincipalOrgID` / `aws:PrincipalAccount` condition that holds allows.
      A condition that cannot be evaluated makes the check "could not verify".

    Example:
      "targetAccountIds": ["444455556666"]   with a key policy that allows only
      arn:aws:iam::111122223333:root

    Fix:
      Add a key policy statement allowing the receiving account
      (arn:aws:iam::444455556666:root, or its EC2ImageBuilderDistributionCrossAccountRole),
      or `*` with an `aws:PrincipalOrgID` condition for an organization, the actions
      above; and, in the receiving account, an IAM policy allowing its role the same.
    """

    id = "IBD021"
    slug = "kms-key-not-shared"
    severity = Severity.HIGH
    summary = "KMS key of a shared AMI must allow every receiving account to use it"
    tags = ("reliability", "encryption", "kms", "sharing", "aws-context")
    sources = (
        Source(
            CROSS_ACCOUNT_GUIDE,
            "Update the key policy for all of those keys to allow destination accounts to use your key.",
        ),
        Source(
            "Amazon EC2 User Guide, Share an AMI with specific AWS accounts",
            "If you share an AMI that is backed by encrypted snapshots, you must allow the AWS accounts to use the KMS "
            "keys that were used to encrypt the snapshots.",
        ),
        Source(
            "Amazon EBS User Guide, Requirements for Amazon EBS encryption",
            "You must grant users permission to call the following actions in order to use EBS encryption: "
            "kms:CreateGrant, kms:Decrypt, kms:DescribeKey, kms:GenerateDataKeyWithoutPlainText, kms:ReEncrypt",
        ),
    )
    facts = ("kms-key", "kms-key-policy", "kms-grants", "organization", "organization-accounts")

    def __init__(self, options=None) -> None:
        super().__init__(options)
        self._verdicts: dict = {}

    def requests(self, config, ctx):
        for _path, _dist, key, _region, fact, ami in key_subjects(config, ctx, "kms-key"):
            if any(True for _ in recipients(ami, "")):
                yield fact
                yield FactKey("kms-key-policy", fact.account, fact.region, key)
                # Grants are read only where the policy alone falls short (see _verdict).

    @one_entry_per_reason
    def check(self, config, ctx):
        # Imported here: the offline path loads every rule but never evaluates a policy.
        from auditor.context.policy import Principal, RequestFacts, uses_condition_key

        for _path, dist_pointer, key, _region, fact_key, ami in key_subjects(config, ctx, "kms-key"):
            pointer = f"{dist_pointer}/amiDistributionConfiguration"
            principals = list(self._principals(ami, pointer, fact_key, ctx))
            if not principals:
                continue
            reason, policy, meta = self._key_facts(ctx, fact_key, key)
            if reason is not None:
                for path, _how, _who in principals:
                    ctx.cannot_verify(path, reason)
                ctx.note(dist_pointer, "Who can use the key", f"could not verify ({reason})")
                continue
            arn = meta.get("Arn")
            match = KMS_ARN_RE.match(arn or "")
            key_region = match.group("region") if match else fact_key.region
            facts = RequestFacts(resource=arn, region=key_region, via_service=f"ec2.{key_region}.amazonaws.com")
            seen = []
            for path, how, who in principals:
                if uses_condition_key(policy, "aws:PrincipalOrgID") and who.account is not None:
                    who = Principal(account=who.account, arn=who.arn, **principal_org(ctx, who.account))
                # Many configurations share a key and a recipient: decide each pair once per run.
                memo = (id(ctx.facts), fact_key, key, who)
                verdict = self._verdicts.get(memo)
                if verdict is None:
                    verdict = self._verdicts[memo] = self._verdict(ctx, policy, who, facts, fact_key, key)
                seen.append(f"{_label(how, who)}: {verdict[0]}")
                if verdict[0] == "no":
                    yield Violation(path, f"KMS key {key} does not let {_label(how, who)} use it: {verdict[1]}")
                elif verdict[0] == "could not verify":
                    ctx.cannot_verify(path, verdict[1])
            ctx.note(dist_pointer, "Who can use the key", "; ".join(seen))

    @staticmethod
    def _principals(ami, pointer, fact_key, ctx):
        from auditor.context.policy import Principal

        for path, how, value in recipients(ami, pointer):
            if how in ("copy", "launch"):
                account = account_of(value, ctx)
                if account is None:
                    if isinstance(value, str):
                        continue  # malformed: IBD006 reports it
                    ctx.cannot_verify(path, "the account is not a literal")
                    continue
                if account == fact_key.account:
                    continue
                role = None
                if how == "copy":
                    role = f"arn:{partition(fact_key.region)}:iam::{account}:role/{DISTRIBUTION_ROLE}"
                yield path, how, Principal(account=account, arn=role)
            else:
                match = ORG_ARN_RE.match(value) if isinstance(value, str) else None
                if match is None:
                    if not isinstance(value, str):
                        ctx.cannot_verify(path, "the organization ARN is not a literal")
                    continue  # malformed: IBD007 reports it
                yield path, how, Principal(org_id=match.group("org"))

    @staticmethod
    def _key_facts(ctx, fact_key, key):
        described = ctx.fact(fact_key)
        if not described.known:
            return described.error, None, None
        if described.value is None:
            return "the key does not exist (IBD020)", None, None
        policy = ctx.fact(FactKey("kms-key-policy", fact_key.account, fact_key.region, key))
        if not policy.known:
            return policy.error, None, None
        return None, policy.value, described.value

    @staticmethod
    def _verdict(ctx, policy, who, facts, fact_key, key) -> tuple[str, str]:
        """("yes" | "no" | "could not verify", why)."""
        from auditor.context.policy import Decision, evaluate_all, grants_from

        answers = evaluate_all(policy, who, REQUIRED_ACTIONS, facts)
        denied = [action for action, a in answers.items() if a.decision is Decision.DENIED]
        if denied:
            return "no", f"{', '.join(denied)} ({answers[denied[0]].reason})"
        if not all(a.decision is Decision.ALLOWED for a in answers.values()):
            # Grants can only add permissions: read them when the policy alone falls short.
            listed = ctx.fact(FactKey("kms-grants", fact_key.account, fact_key.region, key))
            if not listed.known:
                return "could not verify", listed.error or ""
            answers = evaluate_all(policy, who, REQUIRED_ACTIONS, facts, grants_from(listed.value or []))
            failing = [action for action, a in answers.items() if a.decision in (Decision.DENIED, Decision.NOT_ALLOWED)]
            if failing:
                return "no", f"{', '.join(failing)} ({answers[failing[0]].reason})"
        unknown = [a.reason for a in answers.values() if a.decision is Decision.UNKNOWN]
        if unknown:
            return "could not verify", unknown[0]
        return "yes", ""


def _label(how: str, who: Principal) -> str:
    if how == "copy":
        return f"account {who.account}'s {DISTRIBUTION_ROLE}"
    if how == "launch":
        return f"account {who.account}"
    return f"organization {who.org_id}" if how == "organization" else f"the OU's organization {who.org_id}"
