"""IBD002 ami-public-launch-permission."""

from __future__ import annotations

from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Violation

from ._walk import ami_configs, is_unresolved, items, launch_permission, text


class AmiPublicLaunchPermission(Rule):
    """The AMI must not be launchable by every AWS account.

    Why:
      `launchPermission.userGroups: ["all"]` makes each distributed AMI public: any AWS
      account can find it and launch it, with whatever software, configuration and
      secrets were baked into the image. Public AMIs are a common source of leaked
      credentials. EC2 also refuses to make an encrypted AMI public, so the build fails
      late if the image is encrypted.

    Example:
      "launchPermission": {"userGroups": ["all"]}

    Fix:
      Remove "all" from `userGroups` and share with the accounts, organizations or OUs
      that need the image (`userIds`, `organizationArns`, `organizationalUnitArns`).
    """

    id = "IBD002"
    slug = "ami-public-launch-permission"
    severity = Severity.CRITICAL
    summary = "AMI launch permission must not include the public group 'all'"
    tags = ("security", "exposure", "sharing")

    def check(self, config, ctx):
        for pointer, ami, dist in ami_configs(config):
            perm_pointer = join_pointer(pointer, "launchPermission")
            for path, group in items(launch_permission(ami), "userGroups", perm_pointer):
                if is_unresolved(group):
                    ctx.cannot_verify(path, "launch permission user group is not a literal")
                elif isinstance(group, str) and group.strip().lower() == "all":
                    region = text(dist.get("region")) or "its region"
                    yield Violation(
                        path, f"AMI distributed to {region} is public (userGroups contains {group!r}); remove it"
                    )
