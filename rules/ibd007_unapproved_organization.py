"""IBD007 unapproved-organization."""

from __future__ import annotations

import re
from dataclasses import dataclass

from auditor import apimodel
from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Violation, option

from ._walk import ami_configs, is_unresolved, items, launch_permission

ORG_RE = re.compile(apimodel.pattern("OrganizationArn") or ".*")
OU_RE = re.compile(apimodel.pattern("OrganizationalUnitArn") or ".*")


@dataclass(frozen=True)
class Options:
    allowed_organizations: tuple[str, ...] = option((), "Organization ARNs the AMI may be shared with; empty: any.")
    allowed_organizational_units: tuple[str, ...] = option((), "OU ARNs the AMI may be shared with; empty: any.")


class UnapprovedOrganization(Rule):
    """AMIs may only be shared with approved AWS Organizations and OUs.

    Why:
      `organizationArns` and `organizationalUnitArns` grant launch permission to every
      account in an organization or OU, now and in future. Sharing with the wrong one
      exposes the image widely; a malformed ARN fails the distribution.

    Example:
      "organizationArns": ["arn:aws:organizations::123456789012:organization/o-abc"]

    Fix:
      Use well-formed ARNs (organization/o-... and ou/o-.../ou-...) that appear in the
      `allowed-organizations` / `allowed-organizational-units` options.
    """

    id = "IBD007"
    slug = "unapproved-organization"
    severity = Severity.HIGH
    summary = "AMIs may only be shared with approved organizations and OUs"
    tags = ("security", "sharing", "organizations")
    Options = Options

    def check(self, config, ctx):
        kinds = (
            (
                "organizationArns",
                "organization",
                ORG_RE,
                set(self.options.allowed_organizations),
                "allowed-organizations",
            ),
            (
                "organizationalUnitArns",
                "organizational unit",
                OU_RE,
                set(self.options.allowed_organizational_units),
                "allowed-organizational-units",
            ),
        )
        for pointer, ami, _dist in ami_configs(config):
            perm_pointer = join_pointer(pointer, "launchPermission")
            for key, what, regex, allowed, option_name in kinds:
                for path, arn in items(launch_permission(ami), key, perm_pointer):
                    if is_unresolved(arn):
                        if allowed:
                            ctx.cannot_verify(path, f"{what} ARN is not a literal")
                    elif not isinstance(arn, str) or not regex.match(arn):
                        yield Violation(path, f"{what} ARN {arn!r} is malformed")
                    elif allowed and arn not in allowed:
                        yield Violation(path, f"{what} {arn} is not in {option_name}")
