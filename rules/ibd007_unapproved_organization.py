"""IBD007 unapproved-organization."""

from __future__ import annotations

from dataclasses import dataclass

from auditor import apimodel
from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Violation, model_doc, option

from ._walk import ami_configs, is_unresolved, items, launch_permission, whole_match

# Matched whole (fullmatch): the model's OU pattern has no trailing "$".
ORG_RE = whole_match(apimodel.pattern("OrganizationArn"))
OU_RE = whole_match(apimodel.pattern("OrganizationalUnitArn"))


@dataclass(frozen=True)
class Options:
    allowed_organizations: tuple[str, ...] = option((), "Organization ARNs the AMI may be shared with; empty: any.")
    allowed_organizational_units: tuple[str, ...] = option((), "OU ARNs the AMI may be shared with; empty: any.")


class UnapprovedOrganization(Rule):
    """AMIs may only be shared with approved AWS Organizations and OUs.

    Why:
      `organizationArns` and `organizationalUnitArns` grant launch permission to every
      account in an organization or OU, now and in future. An ARN that does not match
      the API's pattern (matched whole: organization/o-... and ou/o-.../ou-..., nothing
      after) is rejected. Which organizations and OUs may be reached is policy: the
      allowlists, off while empty.

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
    sources = (
        model_doc("OrganizationArn", "^arn:aws[^:]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$"),
        model_doc(
            "OrganizationalUnitArn",
            "^arn:aws[^:]*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}",
        ),
    )

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
                    elif not isinstance(arn, str) or not regex.fullmatch(arn):
                        yield Violation(path, f"{what} ARN {arn!r} is malformed")
                    elif allowed and arn not in allowed:
                        yield Violation(path, f"{what} {arn} is not in {option_name}")
