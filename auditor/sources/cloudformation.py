"""CloudFormation templates (YAML or JSON, SAM and CDK output included).

Every ``AWS::ImageBuilder::DistributionConfiguration`` resource becomes a target. Its
``Properties`` map onto the API shape through CloudFormation's own resource schema
(``auditor/_cfn_schema.py``, generated from the registry schema cfn-lint ships): a
property the schema does not define is never mapped to a similar API member, it is
reported by IBD016 in CloudFormation's terms. Parameters, mappings, conditions and
intrinsics are resolved as ``auditor.sources.cfn_template`` describes; a resource whose
properties use ``Fn::If`` is audited once per reachable combination of its conditions.
Positions come from libyaml's composer, so each property maps to the line and column
of its key. A resource's ``aws:cdk:path`` metadata (CDK output) is its name in reports.
Suppressions: ``Metadata: {ib-audit: {ignore: [{id: IBD001, reason: ...}]}}``.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from auditor import apimodel
from auditor._cfn_schema import PROPERTIES, READ_ONLY_PROPERTIES, RESOURCE_ATTRIBUTES, RESOURCE_TYPE
from auditor.hookspecs import hookimpl
from auditor.model import (
    InlineSuppression,
    InputError,
    Location,
    Notice,
    Origin,
    Scenario,
    SourceMap,
    Span,
    Target,
    UndefinedMember,
    Unresolved,
    join_pointer,
)
from auditor.sources import (
    NOT_JSON,
    LoadResult,
    SourceError,
    checked_config,
    json_document,
    read_option_file,
)
from auditor.sources.cfn_template import (
    NO_VALUE,
    Resolver,
    Template,
    conditions_used,
    is_intrinsic,
    parse_parameter_file,
)
from auditor.sources.yaml_limits import check_composed
from auditor.suppress import metadata_suppressions

try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

_DEFAULT_TAGS = {
    yaml.ScalarNode: "tag:yaml.org,2002:str",
    yaml.SequenceNode: "tag:yaml.org,2002:seq",
    yaml.MappingNode: "tag:yaml.org,2002:map",
}


class _Loader(_SafeLoader):
    """libyaml's composer without PyYAML's implicit tag resolution.

    The composer asks the (pure-Python) resolver for the tag of every untagged node, a
    regular-expression match per scalar; nothing here reads those tags: ``_scalar``
    reads plain scalars as CloudFormation does, and only explicit ``!`` tags matter.
    """

    def resolve(self, kind, value, implicit):
        return _DEFAULT_TAGS[kind]


SHORT_TAGS = {"!Ref": "Ref", "!Condition": "Condition"}
ROOT_SHAPE = apimodel.ROOT_SHAPE

# API member (or shape) -> CloudFormation property, from the generated schema table.
_SPELLED = {api: cfn for table in PROPERTIES.values() for cfn, (api, _kind) in table.items() if api} | {
    ROOT_SHAPE: "Properties"
}


def cfn_spelling(member: str) -> str:
    """An API member (or shape) as CloudFormation writes it; unknown names stay as written."""
    return _SPELLED.get(member, member[:1].upper() + member[1:])


# -- YAML with positions -------------------------------------------------------------------
def _compose(text: str) -> tuple[Any, NodeSpans]:
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
    aliased = check_composed(root, text)  # alias budget, nesting depth, integer size: before converting anything
    if root is None:
        raise SourceError("empty template")
    spans = NodeSpans()
    spans.merges = "<<" in text
    spans.document = spans.convert(root)
    spans.root = _packed(root.start_mark, root.end_mark)
    if aliased:
        spans.alias = _first_alias(text)
    return spans.document, spans


def _first_alias(text: str) -> tuple[int, int, str] | None:
    """Line, column and text of the template's first alias (``*name``)."""
    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            return mark.line + 1, mark.column + 1, f"*{event.anchor}"
    return None


def _merged(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
    """A mapping's members with YAML merge keys (``<<: *base``) expanded as PyYAML expands
    them, which is what ``aws cloudformation package`` and SAM send to CloudFormation:
    the merged mappings' members first (of a list of them, the earlier one wins), then the
    mapping's own, which win over them."""
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    own: list[tuple[yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if type(key_node) is not _SCALAR or key_node.value != "<<" or key_node.style or key_node.tag.startswith("!"):
            own.append((key_node, value_node))
            continue
        if isinstance(value_node, yaml.MappingNode):
            merged.extend(_merged(value_node))
        elif isinstance(value_node, yaml.SequenceNode) and all(
            isinstance(item, yaml.MappingNode) for item in value_node.value
        ):
            for item in reversed(value_node.value):
                merged.extend(_merged(item))
        else:
            mark = value_node.start_mark
            raise SourceError(
                f"line {mark.line + 1}, column {mark.column + 1}: a YAML merge key (<<) takes a mapping "
                "or a list of mappings"
            )
    return merged + own


_SCALAR, _SEQUENCE = yaml.ScalarNode, yaml.SequenceNode


def _packed(start, end) -> int:
    """A region as one integer: one object per value, which the cycle collector never follows."""
    return (((start.line << 32 | start.column) << 32 | end.line) << 32) | end.column


def _tag_name(node: yaml.Node) -> str | None:
    """The long form of a short-form tag (``!If`` -> ``Fn::If``), None for an untagged node."""
    tag = node.tag or ""
    return SHORT_TAGS.get(tag, "Fn::" + tag[1:]) if tag.startswith("!") else None


class NodeSpans(Mapping[str, Span]):
    """Pointer -> span of a template's values, kept as compact as the values themselves.

    ``convert`` turns the composed YAML nodes into plain values and records, for each
    mapping and sequence it makes, the region of each member (from its key, so findings
    point at the property name) as one integer, keyed by the container's identity: no
    pointer string and no span object per value, and the nodes are freed once converted.
    A lookup walks the pointer down from the root. A short-form tag (``!If``) reads as
    its long form (``{"Fn::If": [...]}``), a level whose region is the tagged value
    itself. Where a key repeats, the last one wins, as it does in the value.
    """

    def __init__(self) -> None:
        self.document: Any = None
        self.root = 0
        self.regions: dict[int, Any] = {}  # id(dict) -> {key: region}, id(list) -> (region, ...)
        self.has_if = False  # whether any value is an Fn::If: if not, no resource has scenarios to plan
        self.merges = False  # whether the text may hold a YAML merge key (<<)
        self.alias: tuple[int, int, str] | None = None  # the first alias: line, column, text

    def convert(self, node: yaml.Node) -> Any:
        """``node`` as a plain value, recording the regions of what it contains.

        Written for speed (it runs once per value of the template): a plain scalar
        member is read in place, and regions are packed inline.
        """
        kind = type(node)
        if kind is _SCALAR:
            value: Any = node.value if node.style else _scalar(node)  # quoted or block: a string
        elif kind is _SEQUENCE:
            value = [self.convert(item) for item in node.value]
            self.regions[id(value)] = tuple(_packed(item.start_mark, item.end_mark) for item in node.value)
        else:
            value, regions = {}, {}
            for key_node, value_node in _merged(node) if self.merges else node.value:
                key = key_node.value if type(key_node) is _SCALAR else "<complex key>"
                if type(value_node) is _SCALAR and not value_node.tag.startswith("!"):
                    value[key] = value_node.value if value_node.style else _scalar(value_node)
                else:
                    value[key] = self.convert(value_node)
                start, end = key_node.start_mark, value_node.end_mark
                regions[key] = (((start.line << 32 | start.column) << 32 | end.line) << 32) | end.column
            self.regions[id(value)] = regions
            if "Fn::If" in value:
                self.has_if = True
        name = _tag_name(node)
        if name is None:
            return value
        if name == "Fn::If":
            self.has_if = True
        tagged = {name: value}
        self.regions[id(tagged)] = {name: _packed(node.start_mark, node.end_mark)}
        return tagged

    def _region(self, pointer: str) -> int:
        value, region = self.document, self.root
        for raw in pointer.split("/")[1:] if pointer else ():
            token = raw.replace("~1", "/").replace("~0", "~")
            regions = self.regions.get(id(value))
            if regions is None:
                raise KeyError(pointer)
            if type(value) is list:
                if not (token.isdecimal() and token.isascii() and str(int(token)) == token) or int(token) >= len(value):
                    raise KeyError(pointer)
                region, value = regions[int(token)], value[int(token)]
            else:
                region, value = regions[token], value[token]
        return region

    def __getitem__(self, pointer: str) -> Span:
        region = self._region(pointer)
        mask = (1 << 32) - 1
        return Span((region >> 96) + 1, (region >> 64 & mask) + 1, (region >> 32 & mask) + 1, (region & mask) + 1)

    def _pointers(self, value: Any, pointer: str) -> Iterator[str]:
        yield pointer
        regions = self.regions.get(id(value))
        if regions is None:
            return
        for key in range(len(value)) if type(value) is list else regions:
            yield from self._pointers(value[key], join_pointer(pointer, key))

    def __iter__(self) -> Iterator[str]:
        return self._pointers(self.document, "")

    def __len__(self) -> int:
        return sum(1 for _ in self)


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

    def __init__(self) -> None:
        self.given: dict[str, tuple[str, str]] = {}  # --parameters: name -> (value, file)

    def configure(self, settings) -> list[InputError]:
        """Read ``--parameters`` files (later files win); each bad file is one error."""
        errors = []
        for raw in getattr(settings, "parameter_files", ()):
            read = read_option_file(raw, "--parameters", settings.max_file_size_mb * 1_000_000)
            if isinstance(read, InputError):
                errors.append(read)
                continue
            _, display, text = read
            try:
                values = parse_parameter_file(text)
            except ValueError as exc:
                errors.append(InputError(display, f"--parameters: {exc}"))
                continue
            self.given.update({name: (value, display) for name, value in values.items()})
        return errors

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
        # Composing and converting a template allocates a node, a value and often a
        # position per scalar, all in trees without reference cycles: the cycle collector
        # would only re-walk them, again and again as they grow (most of a large
        # template's load time). Reference counting still frees them.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._load(text, display)
        finally:
            if collecting:
                gc.enable()

    def _load(self, text: str, display: str) -> LoadResult:
        document, spans = _compose(text)
        result = LoadResult()
        if spans.alias is not None:
            line, column, alias = spans.alias
            result.notices.append(
                Notice(
                    "yaml-alias",
                    f"this template uses YAML aliases ({alias}): CloudFormation rejects them, and only "
                    "`aws cloudformation package` or SAM expand them before deploying; ib-audit audits "
                    "the template as expanded",
                    Location(display, Span(line, column, line, column + len(alias))),
                )
            )
        resources = document.get("Resources") if isinstance(document, dict) else None
        if not isinstance(resources, dict):
            return result
        template = Template(document, self.given)
        for logical_id, resource in resources.items():
            if str(logical_id).startswith("Fn::ForEach::") and RESOURCE_TYPE in json.dumps(resource, default=str):
                # AWS::LanguageExtensions loops are not expanded: say so rather than skip them.
                span = spans.get(join_pointer("", "Resources", logical_id))
                where = f"line {span.start_line}, column {span.start_column}: " if span else ""
                result.errors.append(
                    InputError(
                        display,
                        f"{where}{logical_id} makes {RESOURCE_TYPE} resources in a loop, which "
                        "ib-audit does not expand: they are not audited",
                    )
                )
                continue
            if not isinstance(resource, dict) or resource.get("Type") != RESOURCE_TYPE:
                continue
            result.targets.append(_target(display, str(logical_id), resource, template, spans, result))
        for problem in dict.fromkeys(template.problems):
            result.errors.append(InputError(display, problem))
        return result


def _target(
    display: str, logical_id: str, resource: dict, template: Template, spans: NodeSpans, result: LoadResult
) -> Target:
    base = join_pointer("", "Resources", logical_id)
    origin = Origin(kind="cloudformation", file=display, resource=logical_id)
    target_id = f"{display}#{logical_id}"
    properties = resource.get("Properties")
    if properties is not None and not isinstance(properties, dict):
        span = spans.get(join_pointer(base, "Properties"))
        where = f"line {span.start_line}, column {span.start_column}: " if span else ""
        problem = f"{where}{logical_id}: Properties must be an object, got {apimodel.describe(properties)}"
        return Target(target_id, logical_id, origin, error=problem)
    attributes = _resource_attributes(resource, base)
    condition = resource.get("Condition")
    plan = template.plan(conditions_used(properties) if spans.has_if else [], condition)
    # Every finding of a resource with a Condition holds only where the stack creates it.
    created = (
        {"": f"the resource is created only when condition {condition} is true"}
        if isinstance(condition, str) and condition in template.conditions
        else {}
    )
    scenarios = []
    unverified: list[tuple[str, str]] = []
    problems: dict[str, None] = {}
    for assumption in plan.assumptions:
        converter = _Converter(Resolver(template, dict(assumption.conditions), assumption.witnesses), base)
        config = converter.properties(properties)
        source_map = SourceMap(file=display, spans=spans, renames=converter.renames)
        checked_into = LoadResult()
        checked = checked_config(config, source_map, display, checked_into, logical_id)
        problems.update(dict.fromkeys(e.message for e in checked_into.errors))
        unverified.extend(converter.unverified)
        scenarios.append(
            Scenario(
                checked,
                source_map,
                assumption.conditions,
                {**created, **converter.provenance},
                (*converter.undefined, *attributes),
            )
        )
    if plan.note:
        unverified.append(("", plan.note))
    result.errors.extend(InputError(display, message) for message in problems)
    first = scenarios[0]
    return Target(
        id=target_id,
        name=_display_name(resource, first.config, logical_id),
        origin=origin,
        config=first.config,
        source_map=first.source_map,
        suppressions=_metadata_suppressions(resource.get("Metadata")),
        spell=cfn_spelling,
        scenarios=tuple(scenarios),
        unverified=tuple(dict.fromkeys(unverified)),
    )


def _display_name(resource: dict, config: dict, logical_id: str) -> str:
    """The CDK construct path when the template was synthesised by the CDK, else the Name."""
    metadata = resource.get("Metadata")
    cdk_path = metadata.get("aws:cdk:path") if isinstance(metadata, dict) else None
    if isinstance(cdk_path, str) and cdk_path:
        return cdk_path.removesuffix("/Resource")
    return config.get("name") if isinstance(config.get("name"), str) else logical_id


def _resource_attributes(resource: dict, base: str) -> tuple[UndefinedMember, ...]:
    """Keys beside ``Properties`` that are not resource attributes: the template is rejected."""
    out = []
    for key in resource:
        if key in RESOURCE_ATTRIBUTES:
            continue
        path = join_pointer("", key)
        problem = f"CloudFormation rejects the template (\"Invalid template resource property '{key}'\")"
        if key in PROPERTIES[ROOT_SHAPE]:
            message = f"{key!r} is not a resource attribute: {problem}; move it into Properties"
        else:
            suggestion = apimodel.suggest(key, RESOURCE_ATTRIBUTES)
            hint = f"; did you mean {suggestion!r}?" if suggestion else ""
            message = f"{key!r} is not a resource attribute: {problem}{hint}"
        out.append(UndefinedMember(path, message))
    return tuple(out)


_LITERALS = frozenset({str, int, float, bool, type(None)})
_NOT_A_PROPERTY = (None, "")


def _child(file_pointer: str | None, key: Any) -> str | None:
    return join_pointer(file_pointer, key) if file_pointer is not None else None


class _Converter:
    """Resolves one resource's properties under one scenario into the API shape.

    Records, per canonical pointer, the file pointer it came from (``renames``), where a
    resolved value came from (``provenance``), the properties CloudFormation does not
    define (``undefined``) and what stayed unresolved for every rule (``unverified``).
    """

    def __init__(self, resolver: Resolver, base: str) -> None:
        self.resolver = resolver
        self.renames: dict[str, str] = {"": base}
        self.provenance: dict[str, str] = {}
        self.undefined: list[UndefinedMember] = []
        self.unverified: list[tuple[str, str]] = []
        self.base = base

    def properties(self, properties: Any) -> dict[str, Any]:
        if properties is None:
            return {}
        value = self.convert(properties, join_pointer(self.base, "Properties"), "", ROOT_SHAPE)
        self.renames[""] = self.base  # a missing member of the resource points at the resource
        if isinstance(value, Unresolved):
            self.unverified.append(("", f"Properties is {value.expression}: nothing in it could be verified"))
            return {}
        return value if isinstance(value, dict) else {}

    def _pick(self, value: Any, file_pointer: str, pointer: str) -> tuple[Any, str]:
        """Follow ``Fn::If`` to this scenario's branch; ``AWS::NoValue`` removes the value."""
        self.resolver.notes = []
        try:
            return self._follow(value, file_pointer)
        finally:
            self._note(pointer, "; ".join(self.resolver.notes))

    def _follow(self, value: Any, file_pointer: str) -> tuple[Any, str]:
        while is_intrinsic(value):
            ((name, arg),) = value.items()
            if name == "Ref" and arg == "AWS::NoValue":
                return NO_VALUE, file_pointer
            if name != "Fn::If":
                break
            picked = self.resolver.branch(arg)
            if isinstance(picked, Unresolved):
                return picked, file_pointer
            index, value = picked
            file_pointer = join_pointer(file_pointer, "Fn::If", index)
        return value, file_pointer

    def convert(self, value: Any, file_pointer: str | None, pointer: str, shape: str | None) -> Any:
        intrinsic = is_intrinsic(value)
        if file_pointer is not None:
            if intrinsic:
                value, file_pointer = self._pick(value, file_pointer, pointer)
                if value is NO_VALUE:
                    return NO_VALUE  # its note stays: it explains why the object lacks the member
                intrinsic = is_intrinsic(value)
            self.renames[pointer] = file_pointer
        if type(value) in _LITERALS:
            return value  # the common case: a literal
        if intrinsic:
            self.resolver.notes = []
            value = self.resolver.evaluate(value)
            self._note(pointer, "; ".join(self.resolver.notes))
            if value is NO_VALUE:
                return NO_VALUE
            file_pointer = None  # a resolved value has no positions of its own
        if isinstance(value, Unresolved):
            return value
        spec = apimodel.shape(shape) if shape else None
        kind = spec["type"] if spec else None
        renames = self.renames

        if isinstance(value, dict) and kind == "structure":
            table = PROPERTIES.get(shape, {})
            members = spec["members"]
            out: dict[str, Any] = {}
            for key, item in value.items():
                member = table.get(key, _NOT_A_PROPERTY)[0]
                if member is None:
                    self._undefined(str(key), shape, pointer, _child(file_pointer, key))
                    continue
                # Both names are identifiers (the key is a property the schema defines):
                # nothing to escape in either pointer.
                member_pointer = f"{pointer}/{member}"
                if type(item) in _LITERALS:  # what ``convert`` does with a literal, without the call
                    if file_pointer is not None:
                        renames[member_pointer] = f"{file_pointer}/{key}"
                    out[member] = item
                    continue
                item_pointer = f"{file_pointer}/{key}" if file_pointer is not None else None
                converted = self.convert(item, item_pointer, member_pointer, members[member])
                if converted is not NO_VALUE:
                    out[member] = converted
            return out
        if isinstance(value, dict):
            inner = spec["value"] if kind == "map" else None
            out = {}
            for key, item in value.items():
                converted = self.convert(item, _child(file_pointer, key), join_pointer(pointer, key), inner)
                if converted is not NO_VALUE:
                    out[key] = converted
            return out
        if isinstance(value, list):
            inner = spec["member"] if kind == "list" else None
            items = []
            for index, item in enumerate(value):
                converted = self.convert(item, _child(file_pointer, index), f"{pointer}/{len(items)}", inner)
                if converted is not NO_VALUE:
                    items.append(converted)
            return items
        return value

    def _note(self, pointer: str, note: str | None) -> None:
        if note:
            self.provenance[pointer] = f"{self.provenance[pointer]}; {note}" if pointer in self.provenance else note

    def _undefined(self, key: str, shape: str, parent: str, file_pointer: str | None) -> None:
        path = join_pointer(parent, key)
        if file_pointer is not None:
            self.renames[path] = file_pointer
        where = cfn_spelling(shape)
        api = {m.lower(): m for m in apimodel.members(shape)}
        if shape == ROOT_SHAPE and key in READ_ONLY_PROPERTIES:
            message = f"{key!r} is read-only: CloudFormation reports it, a template cannot set it; remove it"
        elif key.lower() in api and api[key.lower()] not in {m for m, _k in PROPERTIES.get(shape, {}).values()}:
            message = (
                f"{key!r} is not a member of {where} in CloudFormation: the Image Builder API has "
                f"{api[key.lower()]}, but {RESOURCE_TYPE} cannot set it"
            )
        else:
            suggestion = apimodel.suggest(key, sorted(PROPERTIES.get(shape, {})))
            if suggestion is None:
                message = f"{key!r} is not a member of {where}"
            else:
                message = f"{key!r} is not a member of {where}; did you mean {suggestion!r}?"
        self.undefined.append(UndefinedMember(path, message))


def _metadata_suppressions(metadata: Any) -> tuple[InlineSuppression, ...]:
    """``Metadata: {ib-audit: {ignore: [...]}}`` entries, parsed by ``auditor.suppress``."""
    return metadata_suppressions(metadata)


@hookimpl
def auditor_add_file_sources() -> list[CloudFormationSource]:
    return [CloudFormationSource()]
