"""IBD005 kms-key-region-mismatch."""

from __future__ import annotations

from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Violation, model_doc

from ._walk import KMS_ARN_RE, ami_configs, is_own_region, target_accounts, text


class KmsKeyRegionMismatch(Rule):
    """A KMS key ARN must be in the same region as the distribution that uses it.

    Why:
      KMS keys are regional, and EC2's CopyImage, which makes each regional AMI copy,
      needs a key that exists in the destination Region. A key ARN from another region
      cannot be used there, so the distribution fails after a full build. (Where the key
      does not apply at all, the own region with no target accounts, this is not
      reported.)

    Example:
      {"region": "eu-west-1", "amiDistributionConfiguration":
        {"kmsKeyId": "arn:aws:kms:us-east-1:111122223333:key/..."}}

    Fix:
      Use a key (or a multi-Region replica) in the distribution's own region.
    """

    id = "IBD005"
    slug = "kms-key-region-mismatch"
    severity = Severity.HIGH
    summary = "KMS key ARN must be in the distribution's region"
    tags = ("reliability", "encryption", "kms")
    sources = (model_doc("CopyImage.KmsKeyId", "The specified KMS key must exist in the destination Region.", "ec2"),)

    def check(self, config, ctx):
        for pointer, ami, dist in ami_configs(config):
            key, region = text(ami.get("kmsKeyId")), text(dist.get("region"))
            match = KMS_ARN_RE.match(key) if key else None
            if not (match and region and match.group("region") and match.group("region") != region):
                continue
            if not target_accounts(ami, ctx) and is_own_region(dist, config, ctx) is True:
                continue  # the key does not apply to the original AMI (see IBD001)
            yield Violation(
                join_pointer(pointer, "kmsKeyId"),
                f"KMS key is in {match.group('region')} but the distribution is in {region}; use a key in {region}",
            )
