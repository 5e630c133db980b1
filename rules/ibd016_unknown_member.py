"""IBD016 unknown-member."""

from __future__ import annotations

from auditor import apimodel
from auditor.model import Severity
from auditor.rule import Rule, Source, Violation


class UnknownMember(Rule):
    """Every member must be one the Image Builder API defines.

    Why:
      A misspelt member is not a harmless typo: depending on the tool it is dropped
      silently (the setting you meant never applies, e.g. `launchPermissions` leaves the
      AMI private or `launchTemplateID` skips the template) or it fails the deploy. The
      member list is generated from botocore's service model. CloudFormation is judged
      by its own resource schema (generated from the registry schema cfn-lint ships): it
      names members differently (`LaunchPermissionConfiguration`) and lacks some the API
      has (no `S3ExportConfiguration` in a Distribution). For a property the schema does
      not define, CloudFormation only warns ("extraneous key [X] is not permitted") and
      deploys without it; `Tags` written beside `Properties` instead fails the template
      ("Invalid template resource property 'Tags'").

    Example:
      "amiDistributionConfiguration": {"launchPermissions": {"userIds": ["111122223333"]}}

    Fix:
      Use the member name the message suggests (here `launchPermission`).
    """

    id = "IBD016"
    slug = "unknown-member"
    severity = Severity.MEDIUM
    summary = "Members must be defined by the Image Builder API (typos drop settings)"
    tags = ("correctness", "schema")
    sources = (
        Source(
            "EC2 Image Builder API Reference, DistributionConfiguration and the shapes it reaches (botocore "
            "imagebuilder model)",
            "the member names of each structure, frozen in auditor/_api_model.py",
        ),
        Source(
            "CloudFormation registry schema of AWS::ImageBuilder::DistributionConfiguration (as cfn-lint ships it)",
            "the properties of each definition, each with additionalProperties false, frozen in "
            "auditor/_cfn_schema.py: a Distribution has no S3ExportConfiguration",
        ),
        Source(
            "aws cloudformation validate-template, as reported in cloudtools/troposphere#140",
            "Invalid template resource property 'OptionSettings'",
        ),
        Source(
            "CloudFormation deploying AWS::ImageBuilder::DistributionConfiguration, as reported in aws/aws-cdk#34758",
            "Properties validation failed for resource DistributionConfiguration with message: "
            "#/Distributions/0/AmiDistributionConfiguration: extraneous key [description] is not permitted",
        ),
    )

    def check(self, config, ctx):
        if ctx.undefined_members is not None:
            # The source judged the members against its own format's schema and phrased
            # each message in the author's terms.
            for member in ctx.undefined_members:
                yield Violation(member.path, member.message)
            return
        for path, shape_name, suggestion in apimodel.unknown_members(dict(config)):
            key = path.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")
            # Names as the author's format writes them (KmsKeyId, kms_key_id, kmsKeyId).
            written, shape = ctx.spell(key), ctx.spell(shape_name)
            if suggestion is None:
                yield Violation(path, f"{written!r} is not a member of {shape}")
                continue
            spelled = ctx.spell(suggestion)
            if spelled == written:
                # Spelt right but not valid at this level, e.g. CloudFormation Tags written
                # beside Properties instead of inside them: the setting is ignored.
                yield Violation(path, f"{written!r} is not valid at this level and is ignored; move it into {shape}")
            else:
                yield Violation(path, f"{written!r} is not a member of {shape}; did you mean {spelled!r}?")
