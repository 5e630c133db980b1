"""IBD008 shared-ami-needs-cmk."""

from __future__ import annotations

from auditor.model import CUSTOMER_KEY, Severity, join_pointer
from auditor.rule import Rule, Source, Violation

from ._walk import (
    ami_configs,
    entries,
    is_aws_managed_key,
    is_unresolved,
    launch_permission,
    other_accounts,
    target_accounts,
    text,
)


class SharedAmiNeedsCmk(Rule):
    """An AMI shared with or copied to other accounts must not use an AWS-managed key.

    Why:
      EC2 cannot share an AMI whose snapshots are encrypted with the default AWS
      managed key (`alias/aws/ebs`), and Image Builder's copies for target accounts
      share the AMI first: the distribution fails with "Snapshots encrypted with the AWS
      Managed CMK can't be shared". Unencrypted AMIs can be shared (IBD001 is about
      whether to encrypt). Sharing only with the owner account itself is not sharing.

    Example:
      "amiDistributionConfiguration": {"targetAccountIds": ["444455556666"],
                                       "kmsKeyId": "alias/aws/ebs"}

    Fix:
      Encrypt with a customer-managed key whose key policy grants the recipient
      accounts (or organization) `kms:Decrypt`, `kms:CreateGrant` and
      `kms:DescribeKey`.
    """

    id = "IBD008"
    slug = "shared-ami-needs-cmk"
    severity = Severity.HIGH
    summary = "AMIs shared with or copied to other accounts must not use an AWS-managed KMS key"
    tags = ("security", "encryption", "sharing")
    sources = (
        Source(
            "Amazon EC2 User Guide, Share an AMI with specific AWS accounts",
            "You can't share AMIs that are backed by snapshots that are encrypted with the default AWS managed key.",
        ),
        Source(
            "AWS re:Post Knowledge Center, How do I troubleshoot distribution errors for encrypted AMIs in "
            "Image Builder?",
            "The AWS managed KMS key is specified in the distribution configuration along with one or more target "
            "accounts.",
        ),
    )

    def check(self, config, ctx):
        for pointer, ami, _dist in ami_configs(config):
            named = ami.get("kmsKeyId")
            key = text(named)
            unknown = is_unresolved(named) and named.refers_to != CUSTOMER_KEY
            if not unknown and (key is None or not is_aws_managed_key(key)):
                continue
            perm = launch_permission(ami)
            recipients = [
                *target_accounts(ami, ctx),
                *other_accounts(perm.get("userIds"), ctx),
                *entries(perm.get("organizationArns")),
                *entries(perm.get("organizationalUnitArns")),
            ]
            if not recipients:
                continue
            if unknown:  # shared, with a key that may be alias/aws/ebs
                ctx.cannot_verify(join_pointer(pointer, "kmsKeyId"), "KMS key is not a literal")
                continue
            accounts_only = not (perm.get("organizationArns") or perm.get("organizationalUnitArns"))
            yield Violation(
                join_pointer(pointer, "kmsKeyId"),
                f"AMI is shared with or copied to other accounts but encrypted with the AWS-managed key {key!r}, "
                f"which EC2 cannot share; use a customer-managed key{ctx.owner_note() if accounts_only else ''}",
            )
