"""IBD008 shared-ami-needs-cmk."""

from __future__ import annotations

from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Violation

from ._walk import ami_configs, is_aws_managed_key, is_shared, text


class SharedAmiNeedsCmk(Rule):
    """An AMI shared with other accounts must be encrypted with a customer-managed key.

    Why:
      To launch or copy an encrypted AMI, the recipient needs permission on its KMS key.
      An AWS-managed key (`alias/aws/ebs`) cannot grant that, so recipients cannot use the
      image at all; with no key, the copies follow the account default and may be
      unencrypted in every account they reach.

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
    summary = "Shared AMIs must use a customer-managed KMS key that recipients can use"
    tags = ("security", "encryption", "sharing")

    def check(self, config, ctx):
        for pointer, ami, _dist in ami_configs(config):
            if not is_shared(ami):
                continue
            key = ami.get("kmsKeyId")
            if key is None:
                yield Violation(
                    pointer, "AMI is shared with other accounts but has no kmsKeyId; encrypt it with a shareable CMK"
                )
            elif text(key) and is_aws_managed_key(key):
                yield Violation(
                    join_pointer(pointer, "kmsKeyId"),
                    f"AMI is shared but encrypted with the AWS-managed key {key!r}, which recipients cannot use",
                )
