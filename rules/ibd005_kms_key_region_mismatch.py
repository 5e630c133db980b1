"""IBD005 kms-key-region-mismatch."""

from __future__ import annotations

from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Violation

from ._walk import KMS_ARN_RE, ami_configs, text


class KmsKeyRegionMismatch(Rule):
    """A KMS key ARN must be in the same region as the distribution that uses it.

    Why:
      KMS keys are regional. Image Builder encrypts each regional AMI copy with the key
      named in that distribution; a key ARN from another region cannot be used there, so
      the distribution fails after a full build (or, with a multi-region key replica
      missing, never succeeds).

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

    def check(self, config, ctx):
        for pointer, ami, dist in ami_configs(config):
            key, region = text(ami.get("kmsKeyId")), text(dist.get("region"))
            match = KMS_ARN_RE.match(key) if key else None
            if match and region and match.group("region") and match.group("region") != region:
                yield Violation(
                    join_pointer(pointer, "kmsKeyId"),
                    f"KMS key is in {match.group('region')} but the distribution is in {region}; use a key in {region}",
                )
