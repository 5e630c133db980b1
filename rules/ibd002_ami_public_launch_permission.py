"""IBD002 ami-public-launch-permission."""

from __future__ import annotations

from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Source, Violation, model_doc

from ._walk import ami_configs, is_own_region, is_unresolved, items, launch_permission, region_label

PUBLIC_GROUP = "all"


class AmiPublicLaunchPermission(Rule):
    """The AMI must not be launchable by every AWS account, and `userGroups` holds only `all`.

    Why:
      `launchPermission.userGroups: ["all"]` makes each distributed AMI public: any AWS
      account can find it and launch it, with whatever software, configuration and
      secrets were baked into the image. `all` is the only group there is: any other
      value is not a valid launch permission group, and EC2 rejects it when Image
      Builder applies the permission, so the distribution fails (medium). EC2 cannot make
      an AMI with encrypted snapshots public at all, so a public AMI copy that
      `kmsKeyId` encrypts fails too.

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
    sources = (
        model_doc(
            "LaunchPermissionConfiguration.userGroups",
            "The only supported value is all, which makes the distributed AMI public.",
        ),
        model_doc("PermissionGroup", "all", "ec2"),
        Source(
            "Amazon EC2 User Guide, Make your AMI publicly available for use in Amazon EC2",
            "If your AMI includes one of the following components, you can't make it public (but you can share "
            "the AMI with specific AWS accounts): Encrypted volumes, Snapshots of encrypted volumes, Product codes",
        ),
    )

    def check(self, config, ctx):
        for pointer, ami, dist in ami_configs(config):
            perm_pointer = join_pointer(pointer, "launchPermission")
            region = region_label(dist)
            for path, group in items(launch_permission(ami), "userGroups", perm_pointer):
                if is_unresolved(group):
                    ctx.cannot_verify(path, "launch permission user group is not a literal")
                elif group == PUBLIC_GROUP:
                    note = _encrypted_note(ami, dist, config, ctx)
                    yield Violation(
                        path, f"AMI distributed to {region} is public (userGroups contains 'all'); remove it{note}"
                    )
                elif isinstance(group, str) and group.strip().lower() == PUBLIC_GROUP:
                    yield Violation(
                        path,
                        f"userGroups {group!r} is 'all' spelt differently: EC2 either makes the AMI in {region} "
                        "public or rejects the value; remove it",
                    )
                elif isinstance(group, str):
                    yield Violation(
                        path,
                        f"userGroups {group!r} is not a launch permission group: the only one is 'all' (public), "
                        f"so EC2 rejects it and the distribution to {region} fails; share with userIds, "
                        "organizationArns or organizationalUnitArns instead",
                        severity=Severity.MEDIUM,
                    )


def _encrypted_note(ami, dist, config, ctx) -> str:
    """Say when the public AMI is also encrypted: EC2 refuses, so the distribution fails.

    Launch permissions apply to the owner's AMI in that region: a copy (encrypted with
    kmsKeyId) in another region, the original AMI (encrypted as the recipe says) in the
    own region.
    """
    if ami.get("kmsKeyId") is None:
        return ""
    if is_own_region(dist, config, ctx) is False:
        return "; kmsKeyId encrypts this copy and EC2 cannot make an AMI with encrypted snapshots public, so it fails"
    return ""
