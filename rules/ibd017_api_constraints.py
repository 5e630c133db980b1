"""IBD017 api-constraints."""

from __future__ import annotations

from auditor import apimodel
from auditor._api_model import SHAPES
from auditor.model import Severity, Unresolved, join_pointer
from auditor.patterns import LazyPattern
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


class _StringChecks(dict):
    """(max length, whole-match pattern, enum) per string shape, compiled on first use:
    a scan of saved get output never needs them, and the patterns cost import time."""

    def __missing__(self, name: str) -> tuple[int | None, LazyPattern | None, frozenset[str] | None]:
        spec = SHAPES[name]
        pattern, enum = spec.get("pattern"), spec.get("enum")
        checks = spec.get("max"), whole_match(pattern) if pattern else None, frozenset(enum) if enum else None
        self[name] = checks
        return checks


STRING_CHECKS = _StringChecks()
STRING_SHAPES = frozenset(name for name, spec in SHAPES.items() if spec["type"] == "string")


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
    """Check ``value`` against ``shape_name``.

    This visits every value of every request, so it stays lean: paths travel as token
    tuples and labels as parts, made into text only for a violation, and a string is
    checked in place without a call per value.
    """
    if shape_name in SHAPES_CHECKED_ELSEWHERE or isinstance(value, Unresolved):
        return
    spec = SHAPES[shape_name]
    kind = spec["type"]
    if kind == "structure":
        if isinstance(value, dict):
            _structure(value, shape_name, spec, path, ctx, out)
    elif kind == "string":
        if isinstance(value, str) and _string_problem(value, shape_name) is not None:
            _report_string(value, shape_name, path, label, ctx, out)
    elif kind in ("list", "map"):
        if not isinstance(value, list if kind == "list" else dict):
            return
        if "max" in spec and len(value) > spec["max"]:
            out.append(
                Violation(
                    join_pointer("", *path),
                    f"{_name(label, ctx)} has {len(value)} entries; the API allows at most {spec['max']}",
                )
            )
        if kind == "list":
            _list(value, spec["member"], path, label, ctx, out)
            return
        key_shape = spec["key"]
        for key, item in value.items():
            if _string_problem(key, key_shape) is not None:
                _report_string(key, key_shape, (*path, key), (label[0], label[1] + " key"), ctx, out)
            if not isinstance(item, str) or _string_problem(item, spec["value"]) is not None:
                _walk(item, spec["value"], (*path, key), (label[0], f"{label[1]} value for {key!r}"), ctx, out)
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
        if isinstance(item, str) and member_shape in STRING_SHAPES:
            if member_shape not in SHAPES_CHECKED_ELSEWHERE and _string_problem(item, member_shape) is not None:
                _report_string(item, member_shape, (*path, key), ((shape_name, key), ""), ctx, out)
            continue
        _walk(item, member_shape, (*path, key), ((shape_name, key), ""), ctx, out)


def _string_problem(value: str, shape_name: str) -> str | None:
    """What breaks a string's constraints ("enum", "max", "pattern", "recommend"), or None."""
    if not value:
        return None  # empty means unset to the tools that call the API
    longest, pattern, enum = STRING_CHECKS[shape_name]
    if enum is not None:
        if value not in enum:
            return "enum"
        return "recommend" if shape_name == "SsmParameterDataType" and value != RECOMMENDED_SSM_DATA_TYPE else None
    if longest is not None and len(value) > longest:
        return "max"
    if pattern is not None and not pattern.fullmatch(value):
        return "pattern"
    return None


def _report_string(value: str, shape_name: str, path: tuple, label, ctx, out: list[Violation]) -> None:
    longest, pattern, _ = STRING_CHECKS[shape_name]
    name, pointer = _name(label, ctx), join_pointer("", *path)
    problem = _string_problem(value, shape_name)
    if problem == "recommend":
        out.extend(_recommendation(value, path, name))
    elif problem == "enum":
        choices = apimodel.enum(shape_name)
        hint = apimodel.suggest(value, choices)
        did_you_mean = f"; did you mean {hint!r}?" if hint else ""
        out.append(Violation(pointer, f"{name} {value!r} is not one of {', '.join(map(repr, choices))}{did_you_mean}"))
    else:
        if longest is not None and len(value) > longest:
            out.append(Violation(pointer, f"{name} is {len(value)} characters long; the API allows at most {longest}"))
        if pattern is not None and not pattern.fullmatch(value):
            shown = SHAPES[shape_name]["pattern"]
            # A pattern of a few hundred characters (ImageBuilderArn's) buries the message;
            # name the model's shape instead, where a reader finds it.
            what = f"pattern {shown}" if len(shown) <= 100 else f"{shape_name} pattern (botocore's imagebuilder model)"
            out.append(Violation(pointer, f"{name} {value!r} does not match the API's {what}"))


def _list(value: list, member: str, path: tuple, label, ctx, out: list[Violation]) -> None:
    if member in SHAPES_CHECKED_ELSEWHERE:
        return
    entry = (label[0], label[1] + " entry")
    if SHAPES[member]["type"] == "string":
        for index, item in enumerate(value):
            if isinstance(item, str) and _string_problem(item, member) is not None:
                _report_string(item, member, (*path, index), entry, ctx, out)
        return
    for index, item in enumerate(value):
        _walk(item, member, (*path, index), entry, ctx, out)
