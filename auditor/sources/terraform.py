"""Terraform: ``.tf`` files (HCL) and ``terraform show -json`` plan files.

HCL is parsed with python-hcl2's grammar; its syntax tree keeps the position of every
attribute and block, so a finding points at the exact line. Literal strings, numbers,
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

from auditor import apimodel
from auditor.hookspecs import hookimpl
from auditor.model import InlineSuppression, InputError, Origin, SourceMap, Span, Target, Unresolved, join_pointer
from auditor.sources import LoadResult, SourceError
from auditor.sources.jsonpos import JSONSyntaxError, loads_with_spans

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
IGNORE_RE = re.compile(r"^\s*(?:#|//)\s*ib-audit:ignore\s+([A-Za-z0-9_,\s]+?)(?:\s+(.*))?$")


def api_name(name: str) -> str:
    if name in ATTRIBUTE_RENAMES:
        return ATTRIBUTE_RENAMES[name]
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# -- HCL syntax tree -> values with positions --------------------------------------------------
class _Positions:
    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [m.start() for m in re.finditer("\n", text)]

    def at(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_left(self.newlines, offset)
        start = self.newlines[line - 1] + 1 if line else 0
        return line + 1, offset - start + 1

    def span(self, node) -> Span:
        return Span(*self.at(node.meta.start_pos), *self.at(node.meta.end_pos))

    def source(self, node) -> str:
        return self.text[node.meta.start_pos : node.meta.end_pos]


def _children(node) -> list:
    from lark import Tree

    return [c for c in node.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]


def _token_text(node) -> str:
    from lark import Token

    return "".join(c.value if isinstance(c, Token) else _token_text(c) for c in node.children)


def _expression(node, pos: _Positions) -> Any:
    """A literal HCL expression as a value; anything computed as Unresolved."""
    from lark import Token

    kind = node.data
    if (
        kind == "expr_term"
        and len(_children(node)) == 1
        and all(
            not isinstance(c, Token) for c in node.children if not (isinstance(c, Token) and c.type in ("LPAR", "RPAR"))
        )
    ):
        return _expression(_children(node)[0], pos)
    if kind == "string":
        parts = []
        for part in _children(node):
            if any(getattr(c, "data", None) in ("interpolation", "directive") for c in part.children):
                return Unresolved(pos.source(node))
            parts.append(_token_text(part))
        raw = "".join(parts)
        try:
            return json.loads('"' + raw.replace("\n", "\\n").replace("\t", "\\t") + '"')
        except json.JSONDecodeError:
            return raw
    if kind == "int_lit":
        return int(_token_text(node))
    if kind == "float_lit":
        return float(_token_text(node))
    if kind == "literal_value":
        word = _token_text(node)
        return {"true": True, "false": False, "null": None}.get(word, Unresolved(word))
    if kind == "identifier":
        word = _token_text(node)
        if word in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[word]
        return Unresolved(word)
    if kind == "unary_op":
        inner = _expression(_children(node)[0], pos)
        if (
            isinstance(inner, (int, float))
            and not isinstance(inner, bool)
            and _token_text(node).lstrip().startswith("-")
        ):
            return -inner
        return Unresolved(pos.source(node))
    if kind == "tuple":
        return [_expression(c, pos) for c in _children(node)]
    if kind == "object":
        out = {}
        for elem in _children(node):
            key_node, value_node = _children(elem)
            key = _expression(_children(key_node)[0] if key_node.data == "object_elem_key" else key_node, pos)
            out[str(key)] = _expression(value_node, pos)
        return out
    if kind in ("heredoc_template", "heredoc_template_trim"):
        body = _token_text(node)
        if "${" in body or "%{" in body:
            return Unresolved(pos.source(node))
        lines = body.split("\n")[1:-1]
        return "\n".join(lines) + "\n"
    return Unresolved(pos.source(node))


def _block_parts(block) -> tuple[str, list[str], Any]:
    children = _children(block)
    name = _token_text(children[0])
    labels = []
    body = None
    for child in children[1:]:
        if child.data == "body":
            body = child
        else:
            value = _token_text(child)
            labels.append(value[1:-1] if value.startswith('"') else value)
    return name, labels, body


class _Converter:
    """A resource body -> API-shaped dict, with canonical pointer -> span."""

    def __init__(self, pos: _Positions) -> None:
        self.pos = pos
        self.spans: dict[str, Span] = {}
        self.dynamic: list[str] = []

    def body(self, body, pointer: str, top: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if body is None:
            return out
        for item in _children(body):
            if item.data == "attribute":
                ident, expr = _children(item)[0], _children(item)[-1]
                name = _token_text(ident).strip()
                if top and name in META:
                    continue
                key = api_name(name)
                path = join_pointer(pointer, key)
                out[key] = _expression(expr, self.pos)
                self.spans[path] = self.pos.span(item)
                if isinstance(out[key], list):
                    for index in range(len(out[key])):
                        self.spans[join_pointer(path, index)] = self.pos.span(item)
            elif item.data == "block":
                name, labels, inner = _block_parts(item)
                if name == "dynamic" and labels:
                    self.dynamic.append(f"dynamic {labels[0]!r} block")
                    content = (
                        next(
                            (b for b in _children(inner) if b.data == "block" and _block_parts(b)[0] == "content"), None
                        )
                        if inner is not None
                        else None
                    )
                    if content is None:
                        continue
                    name, inner = labels[0], _block_parts(content)[2]
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
    candidates = list(range(start_line, end_line + 1))
    above = start_line - 1
    while above >= 1 and lines[above - 1].lstrip().startswith(("#", "//")):
        candidates.append(above)
        above -= 1
    out = []
    for number in candidates:
        match = IGNORE_RE.match(lines[number - 1]) if number - 1 < len(lines) else None
        if match:
            reason = (match.group(2) or "").strip() or "Terraform comment ib-audit:ignore"
            for rule_id in re.split(r"[,\s]+", match.group(1).strip()):
                if rule_id:
                    out.append(InlineSuppression(rule_id.upper(), "inline", reason))
    return tuple(out)


def _finish(
    config: dict, display: str, address: str, origin: Origin, source_map: SourceMap, result: LoadResult, suppressions=()
) -> Target:
    checked, problems = apimodel.check_types(config)
    for pointer, message in problems:
        loc = source_map.locate(pointer)
        where = f"line {loc.span.start_line}, column {loc.span.start_column}: " if loc.span else ""
        result.errors.append(InputError(display, f"{where}{address}: {pointer}: {message}"))
    name = checked.get("name") if isinstance(checked.get("name"), str) else address
    return Target(
        id=f"{display}#{address}",
        name=name,
        origin=origin,
        config=checked,
        source_map=source_map,
        suppressions=suppressions,
    )


class TerraformSource:
    name = "terraform"
    priority = 60

    def sniff(self, path: Path, text: str) -> bool:
        return path.name.endswith(".tf") and RESOURCE_TYPE in text

    def load(self, path: Path, text: str, display: str) -> LoadResult:
        import hcl2
        from lark.exceptions import LarkError, UnexpectedInput

        try:
            tree = hcl2.parses_to_tree(text if text.endswith("\n") else text + "\n")
        except UnexpectedInput as exc:
            raise SourceError(f"line {exc.line}, column {exc.column}: invalid HCL") from None
        except (LarkError, RecursionError, ValueError) as exc:
            raise SourceError(f"invalid HCL: {type(exc).__name__}") from None
        pos = _Positions(text)
        lines = text.splitlines()
        result = LoadResult()
        for block in (c for c in _children(_children(tree)[0]) if c.data == "block"):
            kind, labels, body = _block_parts(block)
            if kind != "resource" or len(labels) != 2 or labels[0] != RESOURCE_TYPE:
                continue
            address = f"{RESOURCE_TYPE}.{labels[1]}"
            converter = _Converter(pos)
            config = converter.body(body, "", True)
            converter.spans[""] = pos.span(block)
            span = pos.span(block)
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
        return text.lstrip()[:1] == "{" and '"planned_values"' in text and RESOURCE_TYPE in text

    def load(self, path: Path, text: str, display: str) -> LoadResult:
        try:
            document, spans = loads_with_spans(text)
        except JSONSyntaxError as exc:
            raise SourceError(str(exc)) from None
        result = LoadResult()
        root = document.get("planned_values", {}).get("root_module") if isinstance(document, dict) else None
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
