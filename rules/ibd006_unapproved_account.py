"""IBD006 unapproved-account."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Violation, option

from ._walk import ACCOUNT_RE, ami_configs, distributions, is_unresolved, items, launch_permission


@dataclass(frozen=True)
class Options:
    allowed_accounts: tuple[str, ...] = option((), "Account ids the AMI may reach; empty turns the allowlist off.")


class UnapprovedAccount(Rule):
    """Every account an AMI is copied to, shared with or configured for must be approved.

    Why:
      `targetAccountIds` copies the AMI into other accounts, `launchPermission.userIds`
      lets them launch it, and launch-template, fast-launch and SSM-parameter entries act
      in them. A typo or a stale account id hands your image to someone else. A
      malformed id (not 12 digits) fails the distribution.

    Example:
      "targetAccountIds": ["444455556666"]   with allowed-accounts = ["111122223333"]

    Fix:
      Remove the account, or add it to the `allowed-accounts` option after review.
      The allowlist is off while the option is empty; malformed ids always fire.
    """

    id = "IBD006"
    slug = "unapproved-account"
    severity = Severity.HIGH
    summary = "AMIs may only reach approved AWS accounts"
    tags = ("security", "sharing", "accounts")
    Options = Options

    def check(self, config, ctx):
        allowed = set(self.options.allowed_accounts)
        for path, account, where in _accounts(config):
            if is_unresolved(account):
                if allowed:
                    ctx.cannot_verify(path, f"{where} is not a literal")
            elif not isinstance(account, str) or not ACCOUNT_RE.match(account):
                yield Violation(path, f"{where} {account!r} is not a 12-digit AWS account id")
            elif allowed and account not in allowed:
                yield Violation(path, f"{where} {account} is not in allowed-accounts")


def _accounts(config):
    for pointer, ami, _dist in ami_configs(config):
        yield from ((p, v, "target account") for p, v in items(ami, "targetAccountIds", pointer))
        perm_pointer = join_pointer(pointer, "launchPermission")
        yield from (
            (p, v, "launch permission account") for p, v in items(launch_permission(ami), "userIds", perm_pointer)
        )
    for pointer, dist in distributions(config):
        for key, where in (
            ("launchTemplateConfigurations", "launch template account"),
            ("fastLaunchConfigurations", "fast launch account"),
            ("ssmParameterConfigurations", "SSM parameter account"),
        ):
            field = "amiAccountId" if key == "ssmParameterConfigurations" else "accountId"
            for entry_pointer, entry in items(dist, key, pointer):
                if isinstance(entry, dict) and field in entry:
                    yield join_pointer(entry_pointer, field), entry[field], where
