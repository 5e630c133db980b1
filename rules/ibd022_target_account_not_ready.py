"""IBD022 target-account-not-ready (needs AWS context)."""

from __future__ import annotations

from auditor.facts import FactKey
from auditor.model import Severity, Unresolved
from auditor.rule import Rule, Source, Violation, model_doc

from ._context import (
    CROSS_ACCOUNT_GUIDE,
    DISTRIBUTION_POLICY,
    DISTRIBUTION_ROLE,
    account_of,
    known,
    one_entry_per_reason,
    partition,
    principal_org,
    region_of,
)
from ._walk import ami_configs, items

# The role Image Builder uses in the building account to assume the destination role.
SERVICE_LINKED_ROLE = "aws-service-role/imagebuilder.amazonaws.com/AWSServiceRoleForImageBuilder"


def _targets(config, ctx):
    """``(pointer, target account, partition)`` of every copy into another account."""
    for pointer, ami, dist in ami_configs(config):
        for path, value in items(ami, "targetAccountIds", pointer):
            account = account_of(value, ctx)
            if account is None:
                if isinstance(value, Unresolved):
                    ctx.cannot_verify(path, "the target account is not a literal")
                continue  # a malformed id is IBD006's
            if account != ctx.account:
                yield path, account, partition(region_of(dist, ctx))


class TargetAccountNotReady(Rule):
    """Every account an AMI is copied to must have the role Image Builder distributes through.

    Needs AWS context in the target accounts (``iam:GetRole``,
    ``iam:ListAttachedRolePolicies``): an organization scan reads them through its
    role (``--role-name``); a single-account scan lists them as "could not verify".

    Why:
      Image Builder copies an AMI into another account by assuming the
      `EC2ImageBuilderDistributionCrossAccountRole` there, which needs the AWS managed
      policy `Ec2ImageBuilderCrossAccountDistributionAccess` and a trust policy that
      lets the source account assume it ("Set up cross-account AMI distribution with
      Image Builder", EC2 Image Builder User Guide). Without them the build succeeds
      and the distribution fails afterwards ("AMI Copy Reported Failure ... to the
      destination account").

    Example:
      "targetAccountIds": ["444455556666"]   where 444455556666 has no such role

    Fix:
      In each target account create `EC2ImageBuilderDistributionCrossAccountRole`,
      attach `arn:aws:iam::aws:policy/Ec2ImageBuilderCrossAccountDistributionAccess`,
      and trust the source account (`arn:aws:iam::<source account>:root`).
    """

    id = "IBD022"
    slug = "target-account-not-ready"
    severity = Severity.HIGH
    summary = "Target accounts must have the Image Builder cross-account distribution role"
    tags = ("reliability", "accounts", "iam", "aws-context")
    sources = (
        model_doc(
            "AmiDistributionConfiguration.targetAccountIds",
            "Each listed account receives its own copy of the output AMI.",
        ),
        Source(
            CROSS_ACCOUNT_GUIDE,
            "Create a new IAM role in all of the destination accounts called "
            "EC2ImageBuilderDistributionCrossAccountRole.",
        ),
        Source(CROSS_ACCOUNT_GUIDE, "Attach the Ec2ImageBuilderCrossAccountDistributionAccess policy to the role."),
        Source(
            CROSS_ACCOUNT_GUIDE,
            "Verify that the source account ID is added to the trust policy attached to the IAM role of the "
            "destination account.",
        ),
    )
    facts = ("iam-role", "iam-role-attached-policies", "organization", "organization-accounts")

    def requests(self, config, ctx):
        for _path, account, _partition in _targets(config, ctx):
            yield FactKey("iam-role", account, "", DISTRIBUTION_ROLE)
            yield FactKey("iam-role-attached-policies", account, "", DISTRIBUTION_ROLE)

    @one_entry_per_reason
    def check(self, config, ctx):
        # Imported here: the offline path loads every rule but never evaluates a policy.
        from auditor.context.policy import Decision, Principal, RequestFacts, evaluate, uses_condition_key

        for path, account, part in _targets(config, ctx):
            about = f"role {DISTRIBUTION_ROLE} in account {account}"
            ok, role = known(ctx, path, FactKey("iam-role", account, "", DISTRIBUTION_ROLE), about)
            if not ok:
                continue
            if role is None:
                yield Violation(path, f"account {account} has no role {DISTRIBUTION_ROLE}: the AMI copy into it fails")
                continue
            ok, attached = known(
                ctx, path, FactKey("iam-role-attached-policies", account, "", DISTRIBUTION_ROLE), about
            )
            if ok and not any(str(arn).endswith(f":iam::aws:policy/{DISTRIBUTION_POLICY}") for arn in attached or []):
                yield Violation(
                    path, f"role {DISTRIBUTION_ROLE} in account {account} lacks the policy {DISTRIBUTION_POLICY}"
                )
            if ctx.account is None:
                ctx.cannot_verify(path, "the account the configuration deploys into is unknown")
                continue
            trust = role.get("AssumeRolePolicyDocument")
            org = principal_org(ctx, ctx.account) if uses_condition_key(trust, "aws:PrincipalOrgID") else {}
            who = Principal(account=ctx.account, arn=f"arn:{part}:iam::{ctx.account}:role/{SERVICE_LINKED_ROLE}", **org)
            answer = evaluate(trust, who, "sts:AssumeRole", RequestFacts(resource=role.get("Arn")))
            if answer.decision in (Decision.DENIED, Decision.NOT_ALLOWED):
                yield Violation(
                    path,
                    f"the trust policy of {DISTRIBUTION_ROLE} in account {account} does not let account "
                    f"{ctx.account} assume it ({answer.reason})",
                )
            elif answer.decision is Decision.UNKNOWN:
                ctx.cannot_verify(path, f"trust policy of {DISTRIBUTION_ROLE} in {account}: {answer.reason}")
