"""IBD006 unapproved-account."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.model import Severity, Unresolved, join_pointer
from auditor.rule import Rule, Source, Violation, model_doc, option

from ._walk import ACCOUNT_RE, ami_configs, distributions, is_unresolved, items, launch_permission


@dataclass(frozen=True)
class Options:
    allowed_accounts: tuple[str, ...] = option((), "Account ids the AMI may reach; empty turns the allowlist off.")


# Entries that act on the AMI copy an account owns: (list member, account member, what).
COPY_OWNERS = (
    ("ssmParameterConfigurations", "amiAccountId", "SSM parameter account"),
    ("fastLaunchConfigurations", "accountId", "fast launch account"),
)


class UnapprovedAccount(Rule):
    """Every account an AMI reaches must be well-formed, approved, and receive a copy where one is needed.

    Why:
      `targetAccountIds` copies the AMI into other accounts, `launchPermission.userIds`
      lets them launch it, and launch-template, fast-launch and SSM-parameter entries act
      in them. A malformed id (not 12 digits) is rejected by the API. An SSM parameter
      entry's `amiAccountId` must be a target account of that Region, and a fast-launch
      entry's `accountId` names the owner of the AMI it enables: in a distribution only
      the owner account and the `targetAccountIds` own a copy, so any other account
      fails the distribution (launch-template entries carry no such rule in the docs and
      are not checked for it). Which accounts may be reached at all is policy: the
      `allowed-accounts` allowlist, off while empty.

    Example:
      "ssmParameterConfigurations": [{"amiAccountId": "444455556666", "parameterName": "/golden/ami"}]
      in a distribution without "targetAccountIds": ["444455556666"]

    Fix:
      Add the account to that distribution's `targetAccountIds`, or drop the account
      from the entry. For the allowlist, remove the account or add it to
      `allowed-accounts` after review.
    """

    id = "IBD006"
    slug = "unapproved-account"
    severity = Severity.HIGH
    summary = "AMIs may only reach well-formed, approved accounts that receive a copy where one is needed"
    tags = ("security", "sharing", "accounts")
    Options = Options
    sources = (
        model_doc("AccountId", "^[0-9]{12}$"),
        model_doc(
            "SsmParameterConfiguration.amiAccountId",
            "During distribution, this account must be specified in distribution settings as a target account for "
            "the Region.",
        ),
        model_doc("FastLaunchConfiguration.accountId", "The owner account ID for the fast-launch enabled Windows AMI."),
        Source(
            "EC2 Image Builder User Guide, Manage Image Builder distribution settings",
            "Create a copy of the output AMI for each of the specified target accounts, organizations, and OUs in "
            "the destination Region. The target accounts, organizations, and OUs own their AMI copies",
        ),
    )

    def check(self, config, ctx):
        allowed = set(self.options.allowed_accounts)
        for pointer, member, account, where in _accounts(config, allowed):
            # The common case first, without a pointer: a well-formed account the allowlist accepts.
            if type(account) is str and ACCOUNT_RE.match(account) and (not allowed or account in allowed):
                continue
            path = f"{pointer}/{member}"
            if is_unresolved(account):
                if allowed and ctx.is_own_account(account) is not True:
                    ctx.cannot_verify(path, f"{where} is not a literal")
            elif not isinstance(account, str) or not ACCOUNT_RE.match(account):
                yield Violation(path, f"{where} {account!r} is not a 12-digit AWS account id")
            elif allowed and account not in allowed and ctx.is_own_account(account) is not True:
                yield Violation(path, f"{where} {account} is not in allowed-accounts")
        yield from _copy_owners(config, ctx)


def _copy_owners(config, ctx):
    """SSM-parameter and fast-launch accounts must own a copy: the owner, or a target account."""
    for pointer, dist in distributions(config):
        for key, member, where in COPY_OWNERS:
            listed_entries = dist.get(key)
            if not isinstance(listed_entries, list) or not listed_entries:
                continue  # nothing to check (a whole unresolved list has no entry to read)
            ami = dist.get("amiDistributionConfiguration")
            targets = ami.get("targetAccountIds") if isinstance(ami, dict) else None
            for entry_pointer, entry in items(dist, key, pointer):
                if not isinstance(entry, dict) or member not in entry:
                    continue
                account = entry[member]
                path = join_pointer(entry_pointer, member)
                if ctx.is_own_account(account) is True:
                    continue
                if isinstance(account, Unresolved) or isinstance(targets, Unresolved):
                    ctx.cannot_verify(path, f"whether the {where} receives a copy is unknown (not a literal)")
                    continue
                if not isinstance(account, str) or not ACCOUNT_RE.match(account):
                    continue  # reported above as malformed
                listed = isinstance(targets, list) and account in targets
                if not listed:
                    yield Violation(
                        path,
                        f"{where} {account} is not in this distribution's targetAccountIds, so it owns no copy "
                        f"of the AMI here; add it to targetAccountIds{ctx.owner_note()}",
                    )


# Lists of entries that name an account: (list member, account member, what).
ACCOUNT_ENTRIES = (
    ("launchTemplateConfigurations", "accountId", "launch template account"),
    ("fastLaunchConfigurations", "accountId", "fast launch account"),
    ("ssmParameterConfigurations", "amiAccountId", "SSM parameter account"),
)


def _accounts(config, allowed: set[str]):
    """``(pointer, member path below it, account, what)`` for every account the AMI reaches
    that may need reporting (a list of well-formed, allowed literals is passed over
    whole); the pointer is joined only for what is reported (API member names need no
    escaping)."""
    for pointer, ami, _dist in ami_configs(config):
        yield from _listed(ami.get("targetAccountIds"), pointer, "targetAccountIds", "target account", allowed)
        perm = launch_permission(ami)
        if perm:
            yield from _listed(
                perm.get("userIds"), f"{pointer}/launchPermission", "userIds", "launch permission account", allowed
            )
    for pointer, dist in distributions(config):
        for key, field, where in ACCOUNT_ENTRIES:
            entries = dist.get(key)
            if isinstance(entries, list):
                for index, entry in enumerate(entries):
                    if isinstance(entry, dict) and field in entry:
                        yield pointer, f"{key}/{index}/{field}", entry[field], where


def _listed(values, pointer: str, key: str, where: str, allowed: set[str]):
    """Each entry of an account list; a whole unresolved list once, at the list."""
    if isinstance(values, list):
        match = ACCOUNT_RE.match
        if all(type(v) is str and (not allowed or v in allowed) and match(v) for v in values):
            return
        for index, value in enumerate(values):
            yield pointer, f"{key}/{index}", value, where
    elif isinstance(values, Unresolved):
        yield pointer, key, values, where
