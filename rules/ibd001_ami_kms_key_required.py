"""IBD001 ami-kms-key-required."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Violation, option

from ._walk import ami_configs, is_aws_managed_key, is_unresolved, text


@dataclass(frozen=True)
class Options:
    require_customer_managed: bool = option(True, "Also fire when the key is AWS-managed (alias/aws/...).")


class AmiKmsKeyRequired(Rule):
    """Every distributed AMI must be encrypted with a KMS key you control.

    Why:
      Without `kmsKeyId`, the AMI copies that Image Builder makes in each region
      inherit whatever the account's EBS default is, which may be no encryption at all.
      An AWS-managed key (`alias/aws/ebs`) encrypts, but its key policy cannot be
      changed: you cannot audit or restrict who uses it, and the AMI cannot be shared
      with another account.

    Example:
      "amiDistributionConfiguration": {"name": "base-{{ imagebuilder:buildDate }}"}

    Fix:
      Set `kmsKeyId` to a customer-managed key in the distribution's region, for example
      "kmsKeyId": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-...". Set the option
      `require-customer-managed = false` to accept AWS-managed keys.
    """

    id = "IBD001"
    slug = "ami-kms-key-required"
    severity = Severity.HIGH
    summary = "Distributed AMIs must be encrypted with a customer-managed KMS key"
    tags = ("security", "encryption", "kms")
    Options = Options

    def check(self, config, ctx):
        for pointer, ami, dist in ami_configs(config):
            region = text(dist.get("region")) or "its region"
            key = ami.get("kmsKeyId")
            if key is None:
                yield Violation(pointer, f"AMI distributed to {region} has no kmsKeyId; set a customer-managed KMS key")
            elif is_unresolved(key):
                continue  # a key expression is present: treat as set
            elif self.options.require_customer_managed and is_aws_managed_key(key):
                yield Violation(
                    join_pointer(pointer, "kmsKeyId"),
                    f"AMI distributed to {region} uses the AWS-managed key {key!r}; use a customer-managed KMS key",
                )
