"""Write a canonical configuration as a CloudFormation template or a Terraform file.

The writer records the line it put each canonical JSON Pointer on, so tests know where
a finding must point without asking the tool: for a member, the line of its key (YAML)
or of its attribute/block header (HCL); for a list item, its line.
"""

from __future__ import annotations

import json
from typing import Any

CFN_RENAMES = {"launchPermission": "LaunchPermissionConfiguration"}
TF_BLOCKS = {
    "distributions": "distribution",
    "amiDistributionConfiguration": "ami_distribution_configuration",
    "containerDistributionConfiguration": "container_distribution_configuration",
    "fastLaunchConfigurations": "fast_launch_configuration",
    "launchTemplateConfigurations": "launch_template_configuration",
    "s3ExportConfiguration": "s3_export_configuration",
    "ssmParameterConfigurations": "ssm_parameter_configuration",
    "launchPermission": "launch_permission",
    "targetRepository": "target_repository",
    "launchTemplate": "launch_template",
    "snapshotConfiguration": "snapshot_configuration",
}
TF_MAPS = {"tags", "amiTags"}


def _pascal(name: str) -> str:
    return CFN_RENAMES.get(name, name[:1].upper() + name[1:])


def _snake(name: str) -> str:
    if name == "setDefaultVersion":
        return "default"
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _scalar(value: Any) -> str:
    return json.dumps(value)


def to_cloudformation(config: dict, logical_id: str = "Dist") -> tuple[str, dict[str, int]]:
    lines = [
        "AWSTemplateFormatVersion: '2010-09-09'",
        "Resources:",
        f"  {logical_id}:",
        "    Type: AWS::ImageBuilder::DistributionConfiguration",
        "    Properties:",
    ]
    where: dict[str, int] = {"": 3}

    def emit(value: Any, pointer: str, indent: int, in_map: bool) -> None:
        pad = " " * indent
        if isinstance(value, dict):
            for key, item in value.items():
                name = key if in_map else _pascal(key)
                path = f"{pointer}/{key}"
                where[path] = len(lines) + 1
                if isinstance(item, (dict, list)) and item:
                    lines.append(f"{pad}{name}:")
                    emit(item, path, indent + 2, key in ("tags", "amiTags"))
                else:
                    lines.append(f"{pad}{name}: {_scalar(item)}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                path = f"{pointer}/{index}"
                where[path] = len(lines) + 1
                if isinstance(item, dict) and item:
                    first = True
                    for key, sub in item.items():
                        name = _pascal(key)
                        where[f"{path}/{key}"] = len(lines) + 1
                        prefix = "- " if first else "  "
                        if isinstance(sub, (dict, list)) and sub:
                            lines.append(f"{pad}{prefix}{name}:")
                            emit(sub, f"{path}/{key}", indent + 4, key in ("tags", "amiTags"))
                        else:
                            lines.append(f"{pad}{prefix}{name}: {_scalar(sub)}")
                        first = False
                else:
                    lines.append(f"{pad}- {_scalar(item)}")

    emit(config, "", 6, False)
    return "\n".join(lines) + "\n", where


def _hcl(value: Any) -> str:
    """JSON values as HCL expressions (objects use "=", null stays null)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_hcl(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_hcl(v) for v in value) + "]"
    return json.dumps(value)


def to_terraform(config: dict, name: str = "fail") -> tuple[str, dict[str, int]]:
    lines = [f'resource "aws_imagebuilder_distribution_configuration" "{name}" {{']
    where: dict[str, int] = {"": 1}

    def emit(value: dict, pointer: str, indent: int) -> None:
        pad = " " * indent
        for key, item in value.items():
            path = f"{pointer}/{key}"
            items = item if isinstance(item, list) else [item]
            if key in TF_BLOCKS and items and all(isinstance(i, dict) for i in items):
                where[path] = len(lines) + 1
                for index, sub in enumerate(items):
                    sub_path = f"{path}/{index}" if isinstance(item, list) else path
                    where[sub_path] = len(lines) + 1
                    lines.append(f"{pad}{TF_BLOCKS[key]} {{")
                    emit(sub, sub_path, indent + 2)
                    lines.append(f"{pad}}}")
            elif key in TF_MAPS and isinstance(item, dict):
                where[path] = len(lines) + 1
                where.update({f"{path}/{k}": len(lines) + 1 for k in item})
                body = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in item.items())
                lines.append(f"{pad}{_snake(key)} = {{{body}}}")
            else:
                where[path] = len(lines) + 1
                if isinstance(item, list):
                    for index in range(len(item)):
                        where[f"{path}/{index}"] = len(lines) + 1
                lines.append(f"{pad}{_snake(key)} = {_hcl(item)}")

    emit(config, "", 2)
    lines.append("}")
    return "\n".join(lines) + "\n", where
