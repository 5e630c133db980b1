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
        if not ctx.in_request:
            # What the API returned passed its checks; only the recommendation is left.
            yield from _data_type_recommendations(config)
            return
        if "timeoutMinutes" in config:
            yield Violation(
                "/timeoutMinutes",
                f"{ctx.spell('timeoutMinutes')!r} is not accepted in create or update requests: Image Builder "
                "does not use it; remove it",
            )
        found: list[Violation] = []
        _walk(config, apimodel.ROOT_SHAPE, (), None, ctx, found)
        yield from found


def _data_type_recommendations(config):
    distributions = config.get("distributions")
    for d, dist in enumerate(distributions if isinstance(distributions, list) else ()):
        entries = dist.get("ssmParameterConfigurations") if isinstance(dist, dict) else None
        for e, entry in enumerate(entries if isinstance(entries, list) else ()):
            value = entry.get("dataType") if isinstance(entry, dict) else None
            if isinstance(value, str):
                path = ("distributions", d, "ssmParameterConfigurations", e, "dataType")
                yield from _recommendation(value, path, "dataType")


def _recommendation(value: str, path: tuple, label: str):
    if value != RECOMMENDED_SSM_DATA_TYPE and value in apimodel.enum("SsmParameterDataType"):
        yield Violation(
            join_pointer("", *path),
            f"{label} {value!r}: the API recommends {RECOMMENDED_SSM_DATA_TYPE!r}, which makes Systems Manager "
            "check that the value is an AMI id",
            severity=Severity.LOW,
        )


def _name(label, ctx) -> str:
    """A value's name in messages, from ``((structure shape, member), suffix)``."""
    (shape_name, member), suffix = label
    return (LABELS.get((shape_name, member)) or ctx.spell(member)) + suffix


def _walk(value, shape_name: str, path: tuple, label, ctx, out: list[Violation]) -> None:
    """Check ``value`` against ``shape_name``. Paths travel as token tuples and labels as
    parts, both made into text only for a violation: this walk visits every value."""
    if isinstance(value, Unresolved) or shape_name in SHAPES_CHECKED_ELSEWHERE:
        return
    spec = apimodel.shape(shape_name)
    kind = spec["type"]
    if kind == "structure":
        if isinstance(value, dict):
            _structure(value, shape_name, spec, path, ctx, out)
    elif kind == "list":
        if not isinstance(value, list):
            return
        if "max" in spec and len(value) > spec["max"]:
            out.append(
                Violation(
                    join_pointer("", *path),
                    f"{_name(label, ctx)} has {len(value)} entries; the API allows at most {spec['max']}",
                )
            )
        entry = (label[0], label[1] + " entry")
        for index, item in enumerate(value):
            _walk(item, spec["member"], (*path, index), entry, ctx, out)
    elif kind == "map":
        if not isinstance(value, dict):
            return
        if "max" in spec and len(value) > spec["max"]:
            out.append(
                Violation(
                    join_pointer("", *path),
                    f"{_name(label, ctx)} has {len(value)} entries; the API allows at most {spec['max']}",
                )
            )
        for key, item in value.items():
            _walk(key, spec["key"], (*path, key), (label[0], label[1] + " key"), ctx, out)
            _walk(item, spec["value"], (*path, key), (label[0], f"{label[1]} value for {key!r}"), ctx, out)
    elif kind == "string":
        if isinstance(value, str):
            _string(value, shape_name, spec, path, label, ctx, out)
    elif kind in ("integer", "long") and isinstance(value, int) and not isinstance(value, bool):
        low, high = spec.get("min"), spec.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            allowed = f"{low}..{high}" if high is not None else f"{low} or more"
            out.append(Violation(join_pointer("", *path), f"{_name(label, ctx)} is {value}; the API allows {allowed}"))


def _structure(value: dict, shape_name: str, spec: dict, path: tuple, ctx, out: list[Violation]) -> None:
    members = spec["members"]
    root = shape_name == apimodel.ROOT_SHAPE
    if not root:
        for required in spec.get("required", ()):
            if required not in value and (shape_name, required) not in REQUIRED_CHECKED_ELSEWHERE:
                out.append(
                    Violation(
                        join_pointer("", *path),
                        f"{ctx.spell(shape_name)} lacks the required member {ctx.spell(required)!r}",
                    )
                )
    for key, item in value.items():
        member_shape = members.get(key)
        if member_shape is None or (shape_name, key) in MEMBERS_CHECKED_ELSEWHERE:
            continue  # unknown members are IBD016's
        if root and key == "timeoutMinutes":
            continue  # reported once, in check()
        _walk(item, member_shape, (*path, key), ((shape_name, key), ""), ctx, out)


def _string(value: str, shape_name: str, spec: dict, path: tuple, label, ctx, out: list[Violation]) -> None:
    if shape_name == "SsmParameterDataType" and value in spec["enum"]:
        out.extend(_recommendation(value, path, _name(label, ctx)))
        return
    if not value:
        return  # empty means unset to the tools that call the API
    enum = spec.get("enum")
    if enum and value not in enum:
        hint = apimodel.suggest(value, list(enum))
        did_you_mean = f"; did you mean {hint!r}?" if hint else ""
        out.append(
            Violation(
                join_pointer("", *path),
                f"{_name(label, ctx)} {value!r} is not one of {', '.join(map(repr, enum))}{did_you_mean}",
            )
        )
        return
    if "max" in spec and len(value) > spec["max"]:
        out.append(
            Violation(
                join_pointer("", *path),
                f"{_name(label, ctx)} is {len(value)} characters long; the API allows at most {spec['max']}",
            )
        )
    pattern = spec.get("pattern")
    if pattern and not _pattern(pattern).fullmatch(value):
        out.append(
            Violation(
                join_pointer("", *path), f"{_name(label, ctx)} {value!r} does not match the API's pattern {pattern}"
            )
        )
