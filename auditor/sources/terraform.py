"""Terraform: ``.tf`` files (HCL) and ``terraform show -json`` plan files.

HCL is parsed with tree-sitter's HCL grammar (a C parser, tolerant of errors, with the
position of every attribute and block), so a finding points at the exact line. Literal strings, numbers,
booleans, lists and objects become values; anything else (``var.x``, ``local.y``,
function calls, interpolation, conditionals) becomes an ``Unresolved`` value with its
source text. Every ``distribution`` block is read (Checkov reads only the first); a
``dynamic "distribution"`` block is audited through its ``content``. Suppression:
``# ib-audit:ignore IBD001 reason`` inside the resource or directly above it.

Plan files carry resolved values (child modules included); locations there are the
resource address and the value's line in the plan file.
"""

from __future__ import annotations

import bisect
import json
import re
from pathlib import Path
from typing import Any

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
from auditor.sources import LoadResult, SourceError, checked_config, json_document
from auditor.sources.jsonpos import loads_with_spans
from auditor.suppress import comment_suppressions

RESOURCE_TYPE = "aws_imagebuilder_distribution_configuration"
# Terraform block or attribute name -> (API member, is a repeated block / list).
BLOCKS = {
    "distribution": ("distributions", True),
    "ami_distribution_configuration": ("amiDistributionConfiguration", False),
    "container_distribution_configuration": ("containerDistributionConfiguration", False),
    "fast_launch_configuration": ("fastLaunchConfigurations", True),
    "launch_template_configuration": ("launchTemplateConfigurations", True),
    "s3_export_configuration": ("s3ExportConfiguration", False),
    "ssm_parameter_configuration": ("ssmParameterConfigurations", True),
    "launch_permission": ("launchPermission", False),
    "target_repository": ("targetRepository", False),
    "launch_template": ("launchTemplate", False),
    "snapshot_configuration": ("snapshotConfiguration", False),
}
ATTRIBUTE_RENAMES = {"default": "setDefaultVersion"}
# Terraform's own arguments on the resource: not API members.
META = {
    "count",
    "for_each",
    "provider",
    "depends_on",
    "lifecycle",
    "region",
    "tags_all",
    "id",
    "arn",
    "date_created",
    "date_updated",
    "timeouts",
}
# Data sources that stand for the deploying account's own account id, region and partition.
_OWN_VALUE_RE = re.compile(
    r"^(?:\"\$\{)?\s*data\.(?:(?P<account>aws_caller_identity\.[\w-]+\.account_id)"
    r"|(?P<region>aws_region\.[\w-]+\.(?:name|region))"
    r"|(?P<partition>aws_partition\.[\w-]+\.partition))\s*(?:\}\")?$"
)
_OWN_KINDS = {"account": OWN_ACCOUNT, "region": OWN_REGION, "partition": OWN_PARTITION}


# API member or shape -> Terraform argument or block name.
_SPELLED = (
    {api: tf for tf, (api, _) in BLOCKS.items()}
    | {api: tf for tf, api in ATTRIBUTE_RENAMES.items()}
    | {
        "DistributionConfiguration": "the resource",
        "LaunchPermissionConfiguration": "launch_permission",
        "TargetContainerRepository": "target_repository",
        "FastLaunchLaunchTemplateSpecification": "launch_template",
        "FastLaunchSnapshotConfiguration": "snapshot_configuration",
    }
)


def tf_spelling(member: str) -> str:
    """An API member (or shape) as a Terraform argument or block name."""
    if member in _SPELLED:
        return _SPELLED[member]
    return "".join("_" + c.lower() if c.isupper() else c for c in member).lstrip("_")


def api_name(name: str) -> str:
    if name in ATTRIBUTE_RENAMES:
        return ATTRIBUTE_RENAMES[name]
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# -- HCL syntax tree -> values with positions --------------------------------------------------
_PARSER = None


def _parser():
    """tree-sitter's HCL grammar: a C parser, about 25x faster than a pure-Python one."""
    global _PARSER
    if _PARSER is None:
        import tree_sitter
        import tree_sitter_hcl

        _PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_hcl.language()))
    return _PARSER


class _Positions:
    """Byte offsets (tree-sitter) -> 1-based line and character column."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.newlines = [m.start() for m in re.finditer(b"\n", data)]

    def at(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_left(self.newlines, offset)
        start = self.newlines[line - 1] + 1 if line else 0
        return line + 1, len(self.data[start:offset].decode("utf-8", "replace")) + 1

    def span(self, node) -> Span:
        return Span(*self.at(node.start_byte), *self.at(node.end_byte))

    def source(self, node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")


def _named(node) -> list:
    return [c for c in node.named_children if c.type != "comment"]


def _string(node, pos: _Positions) -> Any:
    """A quoted string or template: its text, or Unresolved when it interpolates."""
    parts = []
    for child in node.named_children:
        if child.type in ("template_interpolation", "template_directive"):
            return unresolved_expression(pos.source(node))
        if child.type in ("template_literal", "escape_sequence"):
            parts.append(pos.source(child))
    raw = "".join(parts)
    try:
        return json.loads('"' + raw.replace("\n", "\\n").replace("\t", "\\t") + '"')
    except json.JSONDecodeError:
        return raw


def _expression(node, pos: _Positions) -> Any:
    """A literal HCL expression as a value; anything computed as Unresolved."""
    kind = node.type
    children = _named(node)
    if kind == "expression":
        if len(children) == 1 and children[0].type in (
            "literal_value",
            "collection_value",
            "template_expr",
            "operation",
        ):
            return _expression(children[0], pos)
        return unresolved_expression(pos.source(node))
    if kind in ("literal_value", "collection_value", "template_expr") and len(children) == 1:
        return _expression(children[0], pos)
    if kind == "numeric_lit":
        text = pos.source(node)
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return Unresolved(text)
    if kind == "bool_lit":
        return pos.source(node) == "true"
    if kind == "null_lit":
        return None
    if kind in ("string_lit", "quoted_template"):
        return _string(node, pos)
    if kind == "heredoc_template":
        if any(c.type in ("template_interpolation", "template_directive") for c in node.named_children):
            return unresolved_expression(pos.source(node))
        literal = [pos.source(c) for c in node.named_children if c.type == "template_literal"]
        return "".join(literal)
    if kind == "tuple":
        return [_expression(c, pos) for c in children if c.type == "expression"]
    if kind == "object":
        out = {}
        for elem in (c for c in children if c.type == "object_elem"):
            key_node, value_node = [c for c in _named(elem) if c.type == "expression"][:2]
            key_children = _named(key_node)
            if len(key_children) == 1 and key_children[0].type == "variable_expr":
                key: Any = pos.source(key_children[0])
            else:
                key = _expression(key_node, pos)
            out[str(key)] = _expression(value_node, pos)
        return out
    if kind == "operation" and len(children) == 1 and children[0].type == "unary_operation":
        unary = children[0]
        operand = _named(unary)
        value = _expression(operand[0], pos) if operand else None
        if (
            pos.source(unary).lstrip().startswith("-")
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
        ):
            return -value
    return unresolved_expression(pos.source(node))


def unresolved_expression(text: str) -> Unresolved:
    """A computed expression as Unresolved; ``data.aws_caller_identity.x.account_id`` (bare
    or as the only interpolation of a string) is known to mean the deploying account."""
    match = _OWN_VALUE_RE.match(text.strip())
    refers_to = next((_OWN_KINDS[k] for k, v in match.groupdict().items() if v), None) if match else None
    return Unresolved(text, refers_to)


def _block_parts(block, pos: _Positions) -> tuple[str, list[str], Any]:
    name, labels, body = "", [], None
    for child in block.named_children:
        if child.type == "identifier" and not name:
            name = pos.source(child)
        elif child.type in ("string_lit", "identifier"):
            value = _string(child, pos) if child.type == "string_lit" else pos.source(child)
            labels.append(str(value))
        elif child.type == "body":
            body = child
    return name, labels, body


def _first_error(node):
    if node.type == "ERROR" or node.is_missing:
        return node
    for child in node.children:
        if child.has_error or child.is_missing:
            found = _first_error(child)
            if found is not None:
                return found
    return None


class _Converter:
    """A resource body -> API-shaped dict, with canonical pointer -> span."""

    def __init__(self, pos: _Positions) -> None:
        self.pos = pos
        self.spans: dict[str, Span] = {}

    def body(self, body, pointer: str, top: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if body is None:
            return out
        for item in _named(body):
            if item.type == "attribute":
                ident = item.named_children[0]
                expr = next((c for c in item.named_children if c.type == "expression"), None)
                name = self.pos.source(ident)
                if (top and name in META) or expr is None:
                    continue
                key = api_name(name)
                path = join_pointer(pointer, key)
                out[key] = _expression(expr, self.pos)
                self.spans[path] = self.pos.span(item)
                if isinstance(out[key], list):
                    for index in range(len(out[key])):
                        self.spans[join_pointer(path, index)] = self.pos.span(item)
            elif item.type == "block":
                name, labels, inner = _block_parts(item, self.pos)
                if name == "dynamic" and labels:
                    content = (
                        next(
                            (
                                b
                                for b in _named(inner)
                                if b.type == "block" and _block_parts(b, self.pos)[0] == "content"
                            ),
                            None,
                        )
                        if inner is not None
                        else None
                    )
                    if content is None:
                        continue
                    name, inner = labels[0], _block_parts(content, self.pos)[2]
                if top and name in META:
                    continue
                key, repeated = BLOCKS.get(name, (api_name(name), False))
                if repeated:
                    items = out.setdefault(key, [])
                    if not isinstance(items, list):
                        continue
                    path = join_pointer(pointer, key, len(items))
                    self.spans.setdefault(join_pointer(pointer, key), self.pos.span(item))
                    self.spans[path] = self.pos.span(item)
                    items.append(self.body(inner, path, False))
                else:
                    path = join_pointer(pointer, key)
                    self.spans[path] = self.pos.span(item)
                    out[key] = self.body(inner, path, False)
        return out


def _comment_suppressions(lines: list[str], start_line: int, end_line: int) -> tuple[InlineSuppression, ...]:
    """``# ib-audit:ignore`` comments in or directly above the resource (``auditor.suppress``)."""
    return comment_suppressions(lines, start_line, end_line)


def _finish(
    config: dict, display: str, address: str, origin: Origin, source_map: SourceMap, result: LoadResult, suppressions=()
) -> Target:
    checked = checked_config(config, source_map, display, result, address)
    name = checked.get("name") if isinstance(checked.get("name"), str) else address
    return Target(
        id=f"{display}#{address}",
        name=name,
        origin=origin,
        config=checked,
        source_map=source_map,
        suppressions=suppressions,
        spell=tf_spelling,
    )


class TerraformSource:
    name = "terraform"
    priority = 60

    def sniff(self, path: Path, text: str) -> bool:
        return path.name.endswith(".tf") and RESOURCE_TYPE in text

    def load(self, path: Path, text: str, display: str) -> LoadResult:
        data = text.encode("utf-8")
        tree = _parser().parse(data)
        pos = _Positions(data)
        if tree.root_node.has_error:
            bad = _first_error(tree.root_node)
            line, column = pos.at(bad.start_byte) if bad is not None else (1, 1)
            what = f"missing {bad.type!r}" if bad is not None and bad.is_missing else "unexpected input"
            raise SourceError(f"line {line}, column {column}: invalid HCL: {what}")
        lines = text.splitlines()
        result = LoadResult()
        body = next((c for c in tree.root_node.named_children if c.type == "body"), None)
        for block in (c for c in _named(body) if c.type == "block") if body is not None else ():
            kind, labels, inner = _block_parts(block, pos)
            if kind != "resource" or len(labels) != 2 or labels[0] != RESOURCE_TYPE:
                continue
            address = f"{RESOURCE_TYPE}.{labels[1]}"
            converter = _Converter(pos)
            config = converter.body(inner, "", True)
            span = pos.span(block)
            converter.spans[""] = span
            target = _finish(
                config,
                display,
                address,
                Origin(kind="terraform", file=display, resource=address),
                SourceMap(file=display, spans=converter.spans),
                result,
                _comment_suppressions(lines, span.start_line, span.end_line),
            )
            result.targets.append(target)
        return result


class TerraformPlanSource:
    """``terraform show -json`` output: resolved values, child modules included."""

    name = "terraform-plan"
    priority = 40

    def sniff(self, path: Path, text: str) -> bool:
        if '"planned_values"' not in text or RESOURCE_TYPE not in text:
            return False
        document = json_document(text)
        return isinstance(document, dict) and isinstance(document.get("planned_values"), dict)

    def load(self, path: Path, text: str, display: str) -> LoadResult:
        document, spans = loads_with_spans(text)  # JSONSyntaxError is a SourceError
        result = LoadResult()
        planned = document.get("planned_values") if isinstance(document, dict) else None
        root = planned.get("root_module") if isinstance(planned, dict) else None
        stack = [(root, "/planned_values/root_module")] if isinstance(root, dict) else []
        while stack:
            module, pointer = stack.pop(0)
            for index, resource in enumerate(module.get("resources") or []):
                if not isinstance(resource, dict) or resource.get("type") != RESOURCE_TYPE:
                    continue
                values_pointer = join_pointer(pointer, "resources", index, "values")
                renames: dict[str, str] = {"": values_pointer}
                config = _plan_values(resource.get("values") or {}, values_pointer, "", renames, top=True)
                address = str(resource.get("address", f"{RESOURCE_TYPE}.{index}"))
                result.targets.append(
                    _finish(
                        config,
                        display,
                        address,
                        Origin(kind="terraform-plan", file=display, resource=address),
                        SourceMap(file=display, spans=spans, renames=renames),
                        result,
                    )
                )
            for index, child in enumerate(module.get("child_modules") or []):
                if isinstance(child, dict):
                    stack.append((child, join_pointer(pointer, "child_modules", index)))
        return result


def _plan_values(values: Any, file_pointer: str, pointer: str, renames: dict[str, str], top: bool = False) -> Any:
    """Plan JSON (snake_case, every block a list) -> API shape."""
    if not isinstance(values, dict):
        return values
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None or (top and name in META):
            continue
        child_file = join_pointer(file_pointer, name)
        if name in BLOCKS:
            key, repeated = BLOCKS[name]
            items = value if isinstance(value, list) else [value]
            if repeated:
                path = join_pointer(pointer, key)
                renames[path] = child_file
                out[key] = [
                    _plan_values(item, join_pointer(child_file, i), join_pointer(path, i), renames)
                    for i, item in enumerate(items)
                ]
                for i in range(len(items)):
                    renames[join_pointer(path, i)] = join_pointer(child_file, i)
            elif items:
                path = join_pointer(pointer, key)
                renames[path] = join_pointer(child_file, 0)
                out[key] = _plan_values(items[0], join_pointer(child_file, 0), path, renames)
            continue
        if isinstance(value, list) and not value:
            continue  # the provider writes absent lists as []
        key = api_name(name)
        renames[join_pointer(pointer, key)] = child_file
        out[key] = value
    return out


@hookimpl
def auditor_add_file_sources() -> list:
    return [TerraformSource(), TerraformPlanSource()]
