"""CloudFormation templates (YAML or JSON, SAM included).

Every ``AWS::ImageBuilder::DistributionConfiguration`` resource becomes a target. Its
``Properties`` (PascalCase) map onto the API shape; intrinsic functions in either form
(``!Ref``/``{"Ref": ...}``, ``!Sub``, ``!GetAtt``, ``!If``, ``!Join``, ``Fn::...``) become
``Unresolved`` values. Positions come from libyaml's composer, so each property maps to
the line and column of its key. Resource-level members other than CloudFormation's own
(``Tags`` written beside ``Properties``) are kept as unknown members for IBD016.
Suppressions: ``Metadata: {ib-audit: {ignore: [{id: IBD001, reason: ...}]}}``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from auditor import apimodel
from auditor.hookspecs import hookimpl
from auditor.model import (
    OWN_ACCOUNT,
    OWN_PARTITION,
    OWN_REGION,
    InlineSuppression,
    Origin,
    SourceMap,
    Span,
    Target,
    Unresolved,
    join_pointer,
)
from auditor.sources import NOT_JSON, LoadResult, SourceError, checked_config, json_document
from auditor.sources.yaml_limits import check_composed
from auditor.suppress import metadata_suppressions

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

RESOURCE_TYPE = "AWS::ImageBuilder::DistributionConfiguration"
RESOURCE_ATTRIBUTES = {
    "Type",
    "Properties",
    "Metadata",
    "DependsOn",
    "Condition",
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "UpdatePolicy",
    "CreationPolicy",
    "Version",
}
# CloudFormation property names that are not the API member name with a capital.
RENAMES = {"LaunchPermissionConfiguration": "launchPermission"}
SHORT_TAGS = {"!Ref": "Ref", "!Condition": "Condition"}


# API member -> CloudFormation property; the root shape is the resource's Properties.
_SPELLED = {api: cfn for cfn, api in RENAMES.items()} | {"DistributionConfiguration": "Properties"}


def cfn_spelling(member: str) -> str:
    """An API member (or shape) as CloudFormation writes it; unknown names stay as written."""
    return _SPELLED.get(member, member[:1].upper() + member[1:])


def canonical_name(name: str) -> str:
    if name in RENAMES:
        return RENAMES[name]
    return name[:1].lower() + name[1:]


def is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    name = str(next(iter(value)))
    return name in ("Ref", "Condition") or name.startswith("Fn::")


# Pseudo parameters that stand for the stack's own account, region and partition.
PSEUDO_PARAMETERS = {"AWS::AccountId": OWN_ACCOUNT, "AWS::Region": OWN_REGION, "AWS::Partition": OWN_PARTITION}


def unresolved_intrinsic(value: dict) -> Unresolved:
    """An intrinsic as an Unresolved value; ``!Ref AWS::AccountId`` and ``!Sub ${AWS::Region}``
    are known to mean the stack's own account or region."""
    ((name, arg),) = value.items()
    refers_to = None
    if name == "Ref" and isinstance(arg, str):
        refers_to = PSEUDO_PARAMETERS.get(arg)
    elif name == "Fn::Sub" and isinstance(arg, str) and arg.startswith("${") and arg.endswith("}"):
        refers_to = PSEUDO_PARAMETERS.get(arg[2:-1])
    return Unresolved(describe_intrinsic(value), refers_to)


def describe_intrinsic(value: dict) -> str:
    ((name, arg),) = value.items()
    short = "!" + (name[4:] if name.startswith("Fn::") else name)
    if isinstance(arg, str):
        return f"{short} {arg}"
    if isinstance(arg, list) and arg and isinstance(arg[0], str) and name == "Fn::Sub":
        return f"{short} {arg[0]}"  # the template text: rules may still read literals in it
    return f"{short} {json.dumps(arg, default=str)[:200]}"


# -- YAML with positions -------------------------------------------------------------------
def _compose(text: str) -> tuple[Any, dict[str, Span]]:
    """Plain values (short-form tags as long-form dicts) and a pointer -> span map.

    A mapping member's span starts at its key, so findings point at the property name.
    """
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SourceError(f"{where}invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SourceError(f"invalid YAML: {exc}") from None
    check_composed(root, text)  # alias budget, nesting depth, integer size: before converting anything
    spans: dict[str, Span] = {}

    def span(start, end) -> Span:
        return Span(start.line + 1, start.column + 1, end.line + 1, end.column + 1)

    def convert(node: yaml.Node, pointer: str, start) -> Any:
        spans[pointer] = span(start, node.end_mark)
        tag = node.tag or ""
        if isinstance(node, yaml.ScalarNode):
            value: Any = _scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = [convert(item, join_pointer(pointer, i), item.start_mark) for i, item in enumerate(node.value)]
        else:
            value = {}
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else str(_plain(key_node))
                value[key] = convert(value_node, join_pointer(pointer, key), key_node.start_mark)
        if tag.startswith("!"):
            name = SHORT_TAGS.get(tag, "Fn::" + tag[1:])
            return {name: value}
        return value

    if root is None:
        raise SourceError("empty template")
    return convert(root, "", root.start_mark), spans


def _plain(node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return node.value
    return "<complex key>"


_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$")


def _scalar(node: yaml.ScalarNode) -> Any:
    """YAML 1.1 core scalars as CloudFormation reads them (plain scalars only)."""
    text = node.value
    if node.style is not None and node.style != "":  # quoted or block scalars are strings
        return text
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True if lowered == "true" else text
    if lowered in ("false", "no", "off"):
        return False if lowered == "false" else text
    if lowered in ("null", "~", ""):
        return None
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


# -- template -> targets -------------------------------------------------------------------
class CloudFormationSource:
    name = "cloudformation"
    priority = 50  # before plain JSON: a JSON template is CloudFormation, not API JSON

    def sniff(self, path: Path, text: str) -> bool:
        if RESOURCE_TYPE not in text:
            return False
        document = json_document(text)
        if document is NOT_JSON:  # YAML: load decides by structure, and hands on an empty result
            return "Resources" in text
        resources = document.get("Resources") if isinstance(document, dict) else None
        return isinstance(resources, dict) and any(
            isinstance(r, dict) and r.get("Type") == RESOURCE_TYPE for r in resources.values()
        )

    def load(self, path: Path, text: str, display: str) -> LoadResult:
        document, spans = _compose(text)
        result = LoadResult()
        resources = document.get("Resources") if isinstance(document, dict) else None
        if not isinstance(resources, dict):
            return result
        for logical_id, resource in resources.items():
            if not isinstance(resource, dict) or resource.get("Type") != RESOURCE_TYPE:
                continue
            base = join_pointer("", "Resources", logical_id)
            result.targets.append(self._target(display, logical_id, resource, base, spans, result))
        return result

    def _target(self, display: str, logical_id: str, resource: dict, base: str, spans, result) -> Target:
        renames: dict[str, str] = {"": base}
        props = resource.get("Properties")
        config: dict[str, Any] = {}
        props_pointer = join_pointer(base, "Properties")
        if isinstance(props, dict):
            config = _convert(props, props_pointer, "", renames, "DistributionConfiguration")
            renames[""] = base
        elif props is not None:
            config = {"distributions": Unresolved(describe_intrinsic(props) if is_intrinsic(props) else "Properties")}
        for key, value in resource.items():
            if key not in RESOURCE_ATTRIBUTES:
                # e.g. Tags beside Properties: CloudFormation ignores it, so does the AMI.
                config[key] = value
                renames[join_pointer("", key)] = join_pointer(base, key)
        source_map = SourceMap(file=display, spans=spans, renames=renames)
        checked = checked_config(config, source_map, display, result, logical_id)
        name = checked.get("name") if isinstance(checked.get("name"), str) else logical_id
        return Target(
            id=f"{display}#{logical_id}",
            name=name,
            origin=Origin(kind="cloudformation", file=display, resource=logical_id),
            config=checked,
            source_map=source_map,
            suppressions=_metadata_suppressions(resource.get("Metadata")),
            spell=cfn_spelling,
        )


def _convert(value: Any, file_pointer: str, pointer: str, renames: dict[str, str], shape: str | None) -> Any:
    """PascalCase properties -> API members, recording canonical -> file pointers."""
    renames[pointer] = file_pointer
    if is_intrinsic(value):
        return unresolved_intrinsic(value)
    spec = apimodel.shape(shape) if shape else None
    kind = spec["type"] if spec else None
    if isinstance(value, dict) and kind == "structure":
        members = spec["members"]
        out = {}
        for key, item in value.items():
            name = canonical_name(key)
            child_shape = members.get(name)
            if child_shape is None:
                name = key  # unknown: keep what the author wrote, for IBD016
            out[name] = _convert(
                item, join_pointer(file_pointer, key), join_pointer(pointer, name), renames, child_shape
            )
        return out
    if isinstance(value, dict) and kind == "map":
        return {
            k: _convert(v, join_pointer(file_pointer, k), join_pointer(pointer, k), renames, spec["value"])
            for k, v in value.items()
        }
    if isinstance(value, list):
        member = spec.get("member") if spec and kind == "list" else None
        if kind == "map":  # CloudFormation Tags as [{Key, Value}] lists
            return value
        return [
            _convert(item, join_pointer(file_pointer, i), join_pointer(pointer, i), renames, member)
            for i, item in enumerate(value)
        ]
    if isinstance(value, dict):
        return {
            k: _convert(v, join_pointer(file_pointer, k), join_pointer(pointer, k), renames, None)
            for k, v in value.items()
        }
    return value


def _metadata_suppressions(metadata: Any) -> tuple[InlineSuppression, ...]:
    """``Metadata: {ib-audit: {ignore: [...]}}`` entries, parsed by ``auditor.suppress``."""
    return metadata_suppressions(metadata)


@hookimpl
def auditor_add_file_sources() -> list[CloudFormationSource]:
    return [CloudFormationSource()]
