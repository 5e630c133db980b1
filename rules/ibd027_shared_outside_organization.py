"""IBD027 shared-outside-organization (needs AWS context)."""

from __future__ import annotations

from auditor.facts import FactKey
from auditor.model import Severity
from auditor.rule import Rule, Violation, model_doc

from ._context import ORG_ARN_RE, account_of, api_doc, one_entry_per_reason, recipients
from ._walk import ami_configs

ORGANIZATION = FactKey("organization", "", "")
MEMBERS = FactKey("organization-accounts", "", "")


def _reached(config, ctx):
    """``(pointer, "account" | "organization", id)`` for every account and organization the AMI reaches."""
    for pointer, ami, _dist in ami_configs(config):
        for path, how, value in recipients(ami, pointer):
            if how in ("copy", "launch"):
                account = account_of(value, ctx)
                if account is not None and account != ctx.account:
                    yield path, "account", account
                elif account is None and not isinstance(value, str):
                    ctx.cannot_verify(path, "the account is not a literal")
            else:
                match = ORG_ARN_RE.match(value) if isinstance(value, str) else None
                if match:
                    yield path, "organization", match.group("org")
                elif not isinstance(value, str):
                    ctx.cannot_verify(path, "the organization ARN is not a literal")


class SharedOutsideOrganization(Rule):
    """Every account and organization an AMI reaches must belong to the scanning organization.

    Needs AWS context: ``organizations:DescribeOrganization`` and, for accounts,
    ``organizations:ListAccounts``, which only the management account or a delegated
    administrator may call. An organization scan has both; a scan from a member
    account checks organization ARNs and lists accounts under "could not verify".

    Why:
      Copies (`targetAccountIds`) and launch permissions (`userIds`,
      `organizationArns`, `organizationalUnitArns`) hand the image, with whatever it
      contains, to those principals. An account that is not an active member of your
      AWS Organization, or another organization, is outside your control, whatever an
      allowlist says: a typo in a 12-digit id or a stale account (suspended, closed,
      left the organization) is a leak. Membership is what `organizations:ListAccounts`
      returns ("ListAccounts", AWS Organizations API Reference).

    Example:
      "targetAccountIds": ["999988887777"]   where 999988887777 is not in the organization

    Fix:
      Remove the account or organization, or correct the id. If sharing outside the
      organization is intended, suppress the finding with a reason.
    """

    id = "IBD027"
    slug = "shared-outside-organization"
    severity = Severity.CRITICAL
    summary = "AMIs must not reach accounts or organizations outside the scanning organization"
    tags = ("security", "sharing", "accounts", "organizations", "aws-context")
    sources = (
        model_doc(
            "AmiDistributionConfiguration.targetAccountIds",
            "Each listed account receives its own copy of the output AMI.",
        ),
        api_doc("organizations", "ListAccounts", "Lists all the accounts in the organization."),
        api_doc(
            "organizations",
            "ListAccounts",
            "You can only call this operation from the management account or a member account that is a delegated "
            "administrator.",
        ),
    )
    facts = ("organization", "organization-accounts")

    def requests(self, config, ctx):
        kinds = {how for _p, how, _v in _reached(config, ctx)}
        return ([ORGANIZATION] if kinds else []) + ([MEMBERS] if "account" in kinds else [])

    @one_entry_per_reason
    def check(self, config, ctx):
        reached = list(_reached(config, ctx))
        if not reached:
            return
        org = ctx.fact(ORGANIZATION)
        if not org.known or org.value is None:
            reason = org.error or "the scanning account is not in an AWS Organization"
            for path, _how, _value in reached:
                ctx.cannot_verify(path, reason)
            return
        org_id = org.value.get("Id")
        members = ctx.fact(MEMBERS) if any(how == "account" for _p, how, _v in reached) else None
        for path, how, value in reached:
            if how == "organization":
                if value != org_id:
                    yield Violation(path, f"organization {value} is not the scanning organization {org_id}")
            elif not members.known:
                ctx.cannot_verify(path, members.error)
            elif value not in members.value:
                yield Violation(
                    path, f"account {value} is not a member of organization {org_id}: shared outside the organization"
                )
            elif members.value[value] != "ACTIVE":
                yield Violation(path, f"account {value} is {members.value[value]} in organization {org_id}")
