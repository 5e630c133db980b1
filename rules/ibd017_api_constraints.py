"""IBD017 api-constraints."""

from __future__ import annotations

import re
from functools import cache

from auditor import apimodel
from auditor.model import Severity, Unresolved, join_pointer
from auditor.rule import Rule, Source, Violation, model_doc

from ._walk import whole_match

# Constraints another rule already reports, with its own message: not repeated here.
SHAPES_CHECKED_ELSEWHERE = {
    "AccountId": "IBD006",
    "OrganizationArn": "IBD007",
    "OrganizationalUnitArn": "IBD007",
    "DiskImageFormat": "IBD004",
    "ContainerRepositoryService": "IBD013",
    "MaxParallelLaunches": "IBD003",  # IBD003 holds EC2's stricter floor of 6
}
MEMBERS_CHECKED_ELSEWHERE = {
    ("LaunchTemplateConfiguration", "launchTemplateId"): "IBD015",
}
REQUIRED_CHECKED_ELSEWHERE = {
    ("S3ExportConfiguration", "roleName"): "IBD012",
    ("S3ExportConfiguration", "s3Bucket"): "IBD012",
    ("ContainerDistributionConfiguration", "targetRepository"): "IBD013",
    ("TargetContainerRepository", "service"): "IBD013",
}
RECOMMENDED_SSM_DATA_TYPE = "aws:ec2:image"
# Members whose bare name would be ambiguous in a message.
LABELS = {
    ("DistributionConfiguration", "arn"): "the configuration ARN",
    ("DistributionConfiguration", "name"): "the configuration name",
    ("AmiDistributionConfiguration", "name"): "AMI name",
}


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return whole_match(text)


class ApiConstraints(Rule):
    """Values must be within the constraints the Image Builder API model states.

    Why:
      The API rejects a request whose values break the model's constraints, and the
      model states them precisely: patterns (an AMI name may hold only letters,
      digits, spaces and `-_.:{}`; a license configuration ARN, an SSM parameter name,
      tag keys), lengths (an AMI name of at most 127 characters), enums (with a
      did-you-mean), numeric ranges, list sizes and required members. The rule is
      driven by the generated model, not by a check per field. `timeoutMinutes` is a
      member Image Builder does not use and does not accept in create or update
      requests. An SSM parameter `dataType` other than the recommended
      `aws:ec2:image` is reported at low severity. Documents the API returned (a live
      scan, saved get output) already passed these checks: only the recommendation
      applies to them. Empty values are not reported (tools drop them before the call),
      and constraints with a rule of their own (account ids, organization ARNs, disk
      formats, the repository service, launch template ids) are left to that rule.

    Example:
      "amiDistributionConfiguration": {"name": "golden (hardened) {{ imagebuilder:buildDate }}"}

    Fix:
      Change the value to one the message's constraint accepts, or remove the member.
    """

    id = "IBD017"
    slug = "api-constraints"
    severity = Severity.MEDIUM
    summary = "Values must be within the Image Builder API's patterns, lengths, enums and ranges"
    tags = ("correctness", "schema")
    sources = (
        model_doc(
            "DistributionConfiguration.timeoutMinutes",
            "A property that Image Builder doesn't use. You can't set this property when you create or update a "
            "distribution configuration, and it has no effect on distribution behavior.",
        ),
        model_doc("SsmParameterConfiguration.dataType", "We recommend the aws:ec2:image data type."),
        Source(
            "EC2 Image Builder User Guide, Create and update AMI distribution configurations",
            "When you set the parameter data type to AWS EC2 Image to signal Systems Manager to validate the "
            "parameter value as an AMI ID, you must also add the ec2:DescribeImages action.",
        ),
        model_doc("AmiNameString", "^[-_A-Za-z0-9{][-_A-Za-z0-9\\s:{}\\.]+[-_A-Za-z0-9}]$"),
    )

    def check(self, config, ctx):
        if "timeoutMinutes" in config and ctx.in_request:
            yield Violation(
                "/timeoutMinutes",
                f"{ctx.spell('timeoutMinutes')!r} is not accepted in create or update requests: Image Builder "
                "does not use it; remove it",
            )
        yield from _walk(config, apimodel.ROOT_SHAPE, "", None, ctx)


def _walk(value, shape_name: str, path: str, label: str | None, ctx):
    """Check ``value`` against ``shape_name``; ``label`` names it in messages."""
    if isinstance(value, Unresolved) or shape_name in SHAPES_CHECKED_ELSEWHERE:
        return
    spec = apimodel.shape(shape_name)
    kind = spec["type"]
    if kind == "structure" and isinstance(value, dict):
        yield from _structure(value, shape_name, spec, path, ctx)
    elif kind == "list" and isinstance(value, list):
        if ctx.in_request and "max" in spec and len(value) > spec["max"]:
            yield Violation(path, f"{label} has {len(value)} entries; the API allows at most {spec['max']}")
        for index, item in enumerate(value):
            yield from _walk(item, spec["member"], join_pointer(path, index), f"{label} entry", ctx)
    elif kind == "map" and isinstance(value, dict):
        if ctx.in_request and "max" in spec and len(value) > spec["max"]:
            yield Violation(path, f"{label} has {len(value)} entries; the API allows at most {spec['max']}")
        for key, item in value.items():
            item_path = join_pointer(path, key)
            yield from _walk(key, spec["key"], item_path, f"{label} key", ctx)
            yield from _walk(item, spec["value"], item_path, f"{label} value for {key!r}", ctx)
    elif kind == "string" and isinstance(value, str):
        yield from _string(value, shape_name, spec, path, label, ctx)
    elif kind in ("integer", "long") and isinstance(value, int) and not isinstance(value, bool) and ctx.in_request:
        low, high = spec.get("min"), spec.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            allowed = f"{low}..{high}" if high is not None else f"{low} or more"
            yield Violation(path, f"{label} is {value}; the API allows {allowed}")


def _structure(value: dict, shape_name: str, spec: dict, path: str, ctx):
    members = spec["members"]
    if ctx.in_request and shape_name != apimodel.ROOT_SHAPE:
        for required in spec.get("required", ()):
            if required not in value and (shape_name, required) not in REQUIRED_CHECKED_ELSEWHERE:
                yield Violation(path, f"{ctx.spell(shape_name)} lacks the required member {ctx.spell(required)!r}")
    for key, item in value.items():
        member_shape = members.get(key)
        if member_shape is None or (shape_name, key) in MEMBERS_CHECKED_ELSEWHERE:
            continue  # unknown members are IBD016's
        if shape_name == apimodel.ROOT_SHAPE and key == "timeoutMinutes":
            continue  # reported once, above
        label = LABELS.get((shape_name, key)) or ctx.spell(key)
        yield from _walk(item, member_shape, join_pointer(path, key), label, ctx)


def _string(value: str, shape_name: str, spec: dict, path: str, label: str | None, ctx):
    if shape_name == "SsmParameterDataType" and value != RECOMMENDED_SSM_DATA_TYPE and value in spec["enum"]:
        yield Violation(
            path,
            f"{label} {value!r}: the API recommends {RECOMMENDED_SSM_DATA_TYPE!r}, which makes Systems Manager "
            "check that the value is an AMI id",
            severity=Severity.LOW,
        )
        return
    if not ctx.in_request or not value:
        return
    enum = spec.get("enum")
    if enum and value not in enum:
        hint = apimodel.suggest(value, list(enum))
        did_you_mean = f"; did you mean {hint!r}?" if hint else ""
        yield Violation(path, f"{label} {value!r} is not one of {', '.join(map(repr, enum))}{did_you_mean}")
        return
    if "max" in spec and len(value) > spec["max"]:
        yield Violation(path, f"{label} is {len(value)} characters long; the API allows at most {spec['max']}")
    pattern = spec.get("pattern")
    if pattern and not _pattern(pattern).fullmatch(value):
        yield Violation(path, f"{label} {value!r} does not match the API's pattern {pattern}")
