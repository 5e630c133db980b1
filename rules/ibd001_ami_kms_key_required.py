"""IBD001 ami-kms-key-required."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.model import CUSTOMER_KEY, Severity, join_pointer
from auditor.rule import Rule, Source, Violation, model_doc, option

from ._walk import ami_configs, copies_for_accounts, is_aws_managed_key, is_own_region, is_unresolved, region_label


@dataclass(frozen=True)
class Options:
    require_customer_managed: bool = option(True, "Also fire when the key is AWS-managed (alias/aws/...).")
    check_source_region: bool = option(
        False,
        "Also fire for a distribution to the configuration's own region with no target accounts, "
        "where kmsKeyId does not apply (the original AMI is encrypted as the image recipe says).",
    )


class AmiKmsKeyRequired(Rule):
    """Every AMI copy Image Builder makes must be encrypted with a KMS key you control.

    Why:
      `kmsKeyId` is the key Image Builder encrypts the AMI copies with: the copy to each
      other region and the copies it makes for `targetAccountIds`. Without it, a copy is
      encrypted only if its source is (or the account's EBS default encryption is on),
      and then with the AWS-managed key. An AWS-managed key (`alias/aws/ebs`) encrypts,
      but its key policy cannot be changed: you cannot audit or restrict who uses it,
      and the AMI cannot be shared with another account.
      The key does not apply to the original AMI in the configuration's own region: a
      distribution there with no target accounts is encrypted as the image recipe's
      block device mappings say, so it is not a finding (option `check-source-region`).
      When the own region is unknown (no ARN, no `!Ref AWS::Region`, no owner-region),
      one key-less distribution is listed as "could not verify"; two or more are a
      finding on the list, since at most one of them can be the own region.

    Example:
      {"region": "eu-west-1", "amiDistributionConfiguration": {"name": "base-{{ imagebuilder:buildDate }}"}}
      in a configuration built in us-east-1

    Fix:
      Set `kmsKeyId` to a customer-managed key in the distribution's region, for example
      "kmsKeyId": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-...". Set the option
      `require-customer-managed = false` to accept AWS-managed keys.
    """

    id = "IBD001"
    slug = "ami-kms-key-required"
    severity = Severity.HIGH
    summary = "AMI copies must be encrypted with a customer-managed KMS key"
    tags = ("security", "encryption", "kms")
    Options = Options
    sources = (
        Source(
            "EC2 Image Builder User Guide, Create and update AMI distribution configurations",
            "The Kms key identifies the AWS KMS key that's used to encrypt the EBS volumes for your image in "
            "the target Region. It's important to note that this doesn't apply for the original AMI that the "
            "build creates under your account in the source Region",
        ),
        model_doc(
            "CopyImage.KmsKeyId",
            "If this parameter is not specified, your Amazon Web Services managed KMS key for Amazon EBS is used.",
            "ec2",
        ),
        Source(
            "Amazon EC2 User Guide, Share an AMI with specific AWS accounts",
            "You can't share AMIs that are backed by snapshots that are encrypted with the default AWS managed key.",
        ),
        model_doc(
            "CreateDistributionConfigurationRequest.distributions",
            "A Region can appear at most once in the list.",
        ),
    )

    def check(self, config, ctx):
        opts = self.options
        unknown: list[tuple[str, str]] = []  # (pointer, region) of key-less copies whose region may be the own one
        for pointer, ami, dist in ami_configs(config):
            key = ami.get("kmsKeyId")
            if is_unresolved(key):
                if key.refers_to == CUSTOMER_KEY:
                    continue  # a key the same stack or module creates: customer managed
                # A key is named, but which (or whether it exists yet) is unknown.
                if opts.require_customer_managed:
                    ctx.cannot_verify(join_pointer(pointer, "kmsKeyId"), "KMS key is not a literal")
                continue
            problem = self._problem(key)
            if problem is None:
                continue
            region = region_label(dist)
            path = pointer if key is None else join_pointer(pointer, "kmsKeyId")
            copies = copies_for_accounts(ami, ctx)
            if copies:
                yield Violation(path, f"AMI copies for target accounts in {region}: {problem}{ctx.owner_note()}")
                continue
            own = is_own_region(dist, config, ctx)
            if own is False:
                yield Violation(path, f"AMI copy to {region}: {problem}")
            elif copies is None and not opts.check_source_region:
                ctx.cannot_verify(
                    join_pointer(pointer, "targetAccountIds"),
                    f"no customer-managed kmsKeyId for {region}: needed if targetAccountIds (not a literal) "
                    "names other accounts",
                )
            elif opts.check_source_region:
                where = "the configuration's own region" if own else "possibly the configuration's own region"
                yield Violation(
                    path,
                    f"AMI in {region} ({where}): {problem} (check-source-region; kmsKeyId does not apply to the "
                    "original AMI there, which is encrypted as the image recipe's block device mappings say)",
                )
            elif own is None:
                unknown.append((pointer, region))
        if len(unknown) == 1:
            pointer, region = unknown[0]
            ctx.cannot_verify(
                pointer,
                f"no customer-managed kmsKeyId for {region}: needed unless {region} is the configuration's "
                "own region (unknown here: declare owner-region), where the key does not apply",
            )
        elif len(unknown) > 1:
            regions = ", ".join(region for _, region in unknown)
            yield Violation(
                "/distributions",
                f"{len(unknown)} distributions ({regions}) have no customer-managed kmsKeyId and at most one of "
                f"them is the configuration's own region, so at least {len(unknown) - 1} AMI "
                f"cop{'y is' if len(unknown) == 2 else 'ies are'} not encrypted with a key you control "
                "(own region unknown: declare owner-region to name them)",
            )

    def _problem(self, key) -> str | None:
        """What is wrong with this kmsKeyId, or None when it is acceptable."""
        if key is None:
            return "no kmsKeyId; set a customer-managed KMS key"
        if self.options.require_customer_managed and isinstance(key, str) and is_aws_managed_key(key):
            return f"the AWS-managed key {key!r}; use a customer-managed KMS key"
        return None
