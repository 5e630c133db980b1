"""Terraform expressions: literals, variables, locals and dynamic-block iterators.

What Terraform itself would know before ``plan`` is resolved; everything else stays an
``Unresolved`` value with its source text:

- ``var.x`` is the value from ``--var-file`` files, else ``*.auto.tfvars`` (lexical
  order), ``terraform.tfvars.json``, ``terraform.tfvars`` (Terraform's precedence, later
  wins), else the ``variable`` block's ``default``. Environment variables (``TF_VAR_x``)
  are not read: a scan must not depend on the shell it runs in.
- ``local.x`` resolves when its expression does (literals, variables, other locals).
- ``<label>.key`` / ``<label>.value`` inside a ``dynamic`` block whose ``for_each``
  resolves.
- String templates resolve when every interpolation does; function calls, conditionals,
  ``for`` expressions, resource attributes and data sources do not (``data.aws_region``
  and friends are known to mean the deploying account's own region, account, partition,
  when the data source reads through the resource's own provider configuration: one
  with ``provider = aws.other``, a ``region`` argument, or an ``aws_region`` that selects
  a region by ``name`` or ``endpoint`` answers for somewhere else, so it stays unknown).

Every resolved variable is noted ("variable kms = 'alias/aws/ebs' (from prod.tfvars)")
so a finding that relied on one can say so.
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.model import CUSTOMER_KEY, OWN_ACCOUNT, OWN_PARTITION, OWN_REGION, Span, Unresolved
from auditor.sources import SourceError, read_text

# Data sources that stand for the deploying account's own account id, region and partition,
# bare, as a string's only interpolation ("${...}" in HCL) or a JSON-syntax template (${...}).
_OWN_VALUE_RE = re.compile(
    r"^(?:\"?\$\{)?\s*data\.(?:(?P<account>aws_caller_identity\.[\w-]+\.account_id)"
    r"|(?P<region>aws_region\.[\w-]+\.(?:name|region))"
    r"|(?P<partition>aws_partition\.[\w-]+\.partition))\s*(?:\}\"?)?$"
)
_OWN_KINDS = {"account": OWN_ACCOUNT, "region": OWN_REGION, "partition": OWN_PARTITION}
# A key (or alias, which can only name a customer-managed key) the same module creates.
_CUSTOMER_KEY_RE = re.compile(
    r"^(?:\"?\$\{)?\s*(?:(?:aws_kms_key|aws_kms_replica_key|aws_kms_external_key|aws_kms_replica_external_key)"
    r"\.[\w-]+(?:\[[^\]]*\])?\.(?:arn|key_id|id)|aws_kms_alias\.[\w-]+(?:\[[^\]]*\])?\.(?:arn|name|id))"
    r"\s*(?:\}\"?)?$"
)
_MISSING = object()
# Arguments of the aws_region data source that pick a region by its name or endpoint
# (its ``region`` argument is compared with the resource's, like the provider).
_REGION_SELECTORS = ("name", "endpoint")
DEFAULT_PROVIDER = "aws"


def unresolved_expression(text: str, scope: Scope | None = None) -> Unresolved:
    """A computed expression as Unresolved; ``data.aws_caller_identity.x.account_id`` (bare
    or as the only interpolation of a string) is known to mean the deploying account.

    With a ``scope``, only when the data source reads through the same provider
    configuration (and region) as the resource being read: ``data.aws_region.x`` with
    ``provider = aws.other`` is another region's name, unknown here.
    """
    if _CUSTOMER_KEY_RE.match(text.strip()):
        return Unresolved(text, CUSTOMER_KEY)
    match = _OWN_VALUE_RE.match(text.strip())
    refers_to = next((_OWN_KINDS[k] for k, v in match.groupdict().items() if v), None) if match else None
    if refers_to is not None and scope is not None and scope.module is not None:
        data_type, label = next(v for v in match.groupdict().values() if v).split(".")[:2]
        if not scope.module.speaks_for(data_type, label, scope.where, scope.file):
            refers_to = None
    return Unresolved(text, refers_to)


def provider_name(value: Any) -> str:
    """A ``provider`` meta-argument's text as Terraform reads it (``aws.other``); absent: ``aws``."""
    if value is None:
        return DEFAULT_PROVIDER
    return str(value).strip().strip('"').replace("${", "").replace("}", "").strip() or DEFAULT_PROVIDER


def short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


# -- HCL syntax tree ----------------------------------------------------------------------------
_PARSER = None


def parser():
    """tree-sitter's HCL grammar: a C parser, about 25x faster than a pure-Python one."""
    global _PARSER
    if _PARSER is None:
        import tree_sitter
        import tree_sitter_hcl

        _PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_hcl.language()))
    return _PARSER


class Positions:
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


class NodeSpans(Mapping[str, Span]):
    """Pointer -> span of a syntax node, worked out only for the pointers a report asks for.

    A resource has hundreds of values and a finding or two: keeping byte offsets and
    turning them into lines and columns on demand is most of a large scan's saving.
    """

    def __init__(self, pos: Positions) -> None:
        self.pos = pos
        self.offsets: dict[str, tuple[int, int]] = {}

    def mark(self, pointer: str, node, first: bool = False) -> None:
        if not (first and pointer in self.offsets):
            self.offsets[pointer] = (node.start_byte, node.end_byte)

    def __getitem__(self, pointer: str) -> Span:
        start, end = self.offsets[pointer]
        return Span(*self.pos.at(start), *self.pos.at(end))

    def __iter__(self) -> Iterator[str]:
        return iter(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets)


# An expression that is only a literal, read off its bytes without walking its syntax
# nodes (most values in a configuration are; each node visited from Python costs more
# than the whole match): a quoted string with nothing to unescape or interpolate, a
# decimal integer, true, false, null; a tuple of such strings, an object of such
# strings under quoted or plain-name keys. Anything else is read from the tree. The
# tree has parsed without error by then, so only the shapes need telling apart.
_STRING = rb'"[^"\\$%\n]*"'
_PLAIN_STRING = re.compile(_STRING)
_PLAIN_INTEGER = re.compile(rb"[0-9]{1,18}")  # longer numbers take the tree path, which bounds them
_PLAIN_KEYWORDS = {b"true": True, b"false": False, b"null": None}
_PLAIN_TUPLE = re.compile(rb"\[\s*(?:" + _STRING + rb"\s*,\s*)*(?:" + _STRING + rb"\s*)?\]")
_STRINGS = re.compile(rb'"([^"\\$%\n]*)"')
# A plain-name key: no hyphen (a-b could be read as a subtraction) and no keyword.
_ELEMENT = rb"(" + _STRING + rb"|[A-Za-z_][A-Za-z0-9_]*)\s*[=:]\s*(" + _STRING + rb")"
# (Each gap is matched one way only, so a long run of spaces cannot make the match backtrack.)
_PLAIN_OBJECT = re.compile(rb"\{\s*(?:" + _ELEMENT.replace(b"(", b"(?:") + rb"\s*(?:,\s*)?)*\}")
_ELEMENTS = re.compile(_ELEMENT)
_KEYWORDS = frozenset({b"true", b"false", b"null", b"for", b"in", b"if"})
NOT_PLAIN = _MISSING  # what ``plain_literal`` and ``plain_value`` return for anything else


def plain_literal(text: bytes) -> Any:
    """The value of an expression's source bytes when it is a plain scalar literal, else ``NOT_PLAIN``."""
    if _PLAIN_STRING.fullmatch(text):
        return text[1:-1].decode("utf-8", "replace")
    if _PLAIN_INTEGER.fullmatch(text):
        return int(text)
    return _PLAIN_KEYWORDS.get(text, _MISSING)


def plain_value(text: bytes) -> Any:
    """``plain_literal``, or a tuple or object of plain strings; else ``NOT_PLAIN``."""
    first = text[:1]
    if first == b"[":
        if _PLAIN_TUPLE.fullmatch(text):
            return [item.decode("utf-8", "replace") for item in _STRINGS.findall(text)]
        return _MISSING
    if first == b"{":
        if not _PLAIN_OBJECT.fullmatch(text):
            return _MISSING
        out = {}
        for key, value in _ELEMENTS.findall(text):
            if key in _KEYWORDS:
                return _MISSING
            name = key[1:-1] if key[:1] == b'"' else key
            out[name.decode("utf-8", "replace")] = value[1:-1].decode("utf-8", "replace")
        return out
    return plain_literal(text)


def named(node) -> list:
    """The named children of a node, comments left out."""
    children = node.named_children
    for child in children:
        if child.type == "comment":
            return [c for c in children if c.type != "comment"]
    return children


def first_error(node):
    if node.type == "ERROR" or node.is_missing:
        return node
    for child in node.children:
        if child.has_error or child.is_missing:
            found = first_error(child)
            if found is not None:
                return found
    return None


def parse_hcl(text: str) -> tuple[Any, Positions]:
    """The syntax tree's body and positions; a syntax error is a SourceError with its line."""
    data = text.encode("utf-8")
    tree = parser().parse(data)
    pos = Positions(data)
    if tree.root_node.has_error:
        bad = first_error(tree.root_node)
        line, column = pos.at(bad.start_byte) if bad is not None else (1, 1)
        what = f"missing {bad.type!r}" if bad is not None and bad.is_missing else "unexpected input"
        raise SourceError(f"line {line}, column {column}: invalid HCL: {what}")
    body = next((c for c in tree.root_node.named_children if c.type == "body"), None)
    return body, pos


def block_parts(block, pos: Positions) -> tuple[str, list[str], Any]:
    name, labels, body = "", [], None
    for child in block.named_children:
        kind = child.type
        if kind == "identifier" and not name:
            name = pos.source(child)
        elif kind in ("string_lit", "identifier"):
            labels.append(str(pos.source(child).strip('"')) if kind == "string_lit" else pos.source(child))
        elif kind == "body":
            body = child
    return name, labels, body


def attributes(body, pos: Positions) -> dict[str, Any]:
    """``name -> expression node`` for the attributes of a body."""
    out = {}
    for item in named(body) if body is not None else ():
        if item.type == "attribute":
            expr = next((c for c in item.named_children if c.type == "expression"), None)
            if expr is not None:
                out[pos.source(item.named_children[0])] = expr
    return out


# -- scopes ---------------------------------------------------------------------------------------
@dataclass
class Scope:
    """What names resolve to where an expression is evaluated."""

    module: ModuleValues | None = None
    iterators: dict[str, dict[str, Any]] = field(default_factory=dict)  # dynamic block label -> key/value
    # The resource's provider configuration and its ``region`` argument's text (None when
    # absent): a data source speaks for the resource's own region and account only when
    # it reads through the same.
    where: tuple[str, str | None] = (DEFAULT_PROVIDER, None)
    file: str | None = None  # the name of the file being read, whose own declarations come first

    def with_iterator(self, name: str, key: Any, value: Any) -> Scope:
        return Scope(self.module, {**self.iterators, name: {"key": key, "value": value}}, self.where, self.file)

    def with_instance(self, each: tuple[Any, Any] | None = None, index: int | None = None) -> Scope:
        """This scope for one instance of a resource: ``each.key``/``each.value`` of its
        ``for_each``, or ``count.index`` of its ``count``."""
        named = {"each": {"key": each[0], "value": each[1]}} if each is not None else {"count": {"index": index}}
        return Scope(self.module, {**self.iterators, **named}, self.where, self.file)

    def for_resource(self, provider: Any, region: Any, file: str) -> Scope:
        """This scope for a resource of ``file`` with these ``provider`` and ``region`` arguments' texts."""
        return Scope(self.module, self.iterators, (provider_name(provider), _region_text(region)), file)


def _region_text(value: Any) -> str | None:
    return None if value is None else str(value).strip().strip('"')


class Evaluator:
    """HCL expressions -> values; ``notes`` collects the variables a value relied on."""

    def __init__(self, pos: Positions, scope: Scope | None = None) -> None:
        self.pos = pos
        self.scope = scope or Scope()
        self.notes: list[str] = []

    def value(self, node) -> Any:
        kind = node.type
        if kind in ("string_lit", "quoted_template"):  # the common case first
            return self._template(node)
        if kind == "expression":
            plain = plain_value(self.pos.data[node.start_byte : node.end_byte])
            if plain is not _MISSING:
                return plain
        children = named(node)
        if kind == "expression":
            if len(children) == 1 and children[0].type in (
                "literal_value",
                "collection_value",
                "template_expr",
                "operation",
                "expression",
            ):
                return self.value(children[0])
            if children and children[0].type == "variable_expr":
                return self._traversal(node, children)
            if len(children) == 1 and children[0].type == "function_call":
                return self._call(node, children[0])
            return unresolved_expression(self.pos.source(node), self.scope)
        if kind in ("literal_value", "collection_value", "template_expr") and len(children) == 1:
            return self.value(children[0])
        if kind == "numeric_lit":
            text = self.pos.source(node)
            for number in (int, float):
                try:
                    return number(text)
                except ValueError:
                    continue
            return Unresolved(text)
        if kind == "bool_lit":
            return self.pos.source(node) == "true"
        if kind == "null_lit":
            return None
        if kind == "heredoc_template":
            return self._heredoc(node)
        if kind == "tuple":
            return [self.value(c) for c in children if c.type == "expression"]
        if kind == "object":
            return self._object(children)
        if kind == "operation" and len(children) == 1 and children[0].type == "unary_operation":
            unary = children[0]
            operand = named(unary)
            value = self.value(operand[0]) if operand else None
            negative = self.pos.source(unary).lstrip().startswith("-")
            if negative and isinstance(value, (int, float)) and not isinstance(value, bool):
                return -value
        return unresolved_expression(self.pos.source(node), self.scope)

    def _call(self, node, call) -> Any:
        """The few pure functions configurations build their values with, when every
        argument resolves: ``merge`` of maps (tags: ``merge(local.tags, {...})``),
        ``concat`` of lists, ``lookup``, ``tomap``, and ``toset``/``tolist`` of strings (a
        resource's ``for_each = toset([...])``; a set of strings is Terraform's lexical
        order, without repeats). Any other function, or an argument that does not resolve
        or has the wrong type (Terraform rejects it), is unresolved."""
        parts = named(call)
        name = self.pos.source(parts[0]) if parts else ""
        arguments = [c for c in named(parts[1]) if c.type == "expression"] if len(parts) > 1 else []
        expands = len(parts) > 1 and any(c.type == "ellipsis" for c in parts[1].children)  # f(list...)
        if name in _FUNCTIONS and not expands:
            values = [self.value(argument) for argument in arguments]
            if not any(holds_unresolved(value) for value in values):
                result = _FUNCTIONS[name](values)
                if result is not _MISSING:
                    return result
        return unresolved_expression(self.pos.source(node), self.scope)

    def _object(self, children) -> dict[str, Any]:
        out = {}
        for elem in (c for c in children if c.type == "object_elem"):
            key_node, value_node = [c for c in named(elem) if c.type == "expression"][:2]
            key: Any = plain_literal(self.pos.data[key_node.start_byte : key_node.end_byte])
            if key is _MISSING:
                key_children = named(key_node)
                if len(key_children) == 1 and key_children[0].type == "variable_expr":
                    key = self.pos.source(key_children[0])  # a bare name is a literal key
                else:
                    key = self.value(key_node)
            out[str(key)] = self.value(value_node)
        return out

    def _template(self, node) -> Any:
        """A string or template: its text, or Unresolved unless every interpolation resolves.

        ``"${var.x}"`` alone is the value itself, not its text (Terraform unwraps it).
        """
        pieces = node.named_children
        # tree-sitter-hcl leaves spaces at either end of a quoted string's literal, and
        # between its pieces, out of every node: they are read back from the gaps.
        gaps = any(a.end_byte != b.start_byte for a, b in itertools.pairwise(pieces))
        if len(pieces) == 3 and not gaps:  # start, one piece, end: the common cases first
            middle = pieces[1]
            if middle.type == "template_literal":
                return _template_unescape(_unescape(self.pos.source(middle)))
            if middle.type == "template_interpolation":
                inner = next((c for c in middle.named_children if c.type == "expression"), None)
                if inner is not None:
                    return self.value(inner)
        elif len(pieces) == 2 and not gaps:
            return ""  # ""
        parts = []
        previous = None
        for child in pieces:
            if gaps and previous is not None and previous.end_byte != child.start_byte:
                parts.append(self.pos.data[previous.end_byte : child.start_byte].decode("utf-8", "replace"))
            previous = child
            if child.type == "template_directive":
                return unresolved_expression(self.pos.source(node), self.scope)
            if child.type == "template_interpolation":
                text = self._interpolated(child)
                if text is None:
                    return unresolved_expression(self.pos.source(node), self.scope)
                parts.append(text)
            elif child.type in ("template_literal", "escape_sequence"):
                raw = self.pos.source(child)
                parts.append(_template_unescape(_unescape(raw)))
        return "".join(parts)

    def _interpolated(self, interpolation) -> str | None:
        """The text a ``${...}`` puts in a template, or None when its value is not a
        resolved scalar (then the whole template is unresolved)."""
        inner = next((c for c in interpolation.named_children if c.type == "expression"), None)
        value = self.value(inner) if inner is not None else None
        if not isinstance(value, (str, int, float, bool)) or isinstance(value, Unresolved):
            return None
        return _text(value)

    def _heredoc(self, node) -> Any:
        """A heredoc's text as Terraform reads it: every line between the markers, each with
        its newline, ``$${``/``%%{`` unescaped; ``<<-`` removes the least indentation of
        its lines that are not blank. (tree-sitter-hcl leaves the spaces at either end of
        each literal, indentation and newlines included, out of every node: the text is
        read from the source between the interpolations.)"""
        children = node.named_children
        data = self.pos.data
        markers = [c for c in children if c.type == "heredoc_identifier"]
        if len(markers) < 2:
            return unresolved_expression(self.pos.source(node), self.scope)
        start = data.find(b"\n", markers[0].end_byte, markers[-1].start_byte) + 1
        end = data.rfind(b"\n", 0, markers[-1].start_byte) + 1
        if start <= 0 or end < start:
            start = end = markers[-1].start_byte  # nothing between the markers
        # The body as literal source pieces and the interpolations' values between them.
        literals: list[str] = []
        values: list[str] = []
        at = start
        for child in children:
            if child.start_byte < start or child.end_byte > end:
                continue
            if child.type == "template_directive":
                return unresolved_expression(self.pos.source(node), self.scope)
            if child.type == "template_interpolation":
                text = self._interpolated(child)
                if text is None:
                    return unresolved_expression(self.pos.source(node), self.scope)
                literals.append(data[at : child.start_byte].decode("utf-8", "replace"))
                values.append(text)
                at = child.end_byte
        literals.append(data[at:end].decode("utf-8", "replace"))
        if self.pos.source(children[0]).strip() == "<<-":
            literals = _flush(literals)
        text = [literals[0]]
        for value, literal in zip(values, literals[1:], strict=True):
            text += [value, literal]
        return "".join(_template_unescape(piece) if n % 2 == 0 else piece for n, piece in enumerate(text))

    def _traversal(self, node, children) -> Any:
        root = self.pos.source(children[0])
        steps: list[Any] = []
        for step in children[1:]:
            if step.type == "get_attr":
                steps.append(self.pos.source(step).lstrip(".").strip())
            elif step.type == "index":
                index = named(step)[0] if named(step) else step
                inner = next((c for c in named(index) if c.type == "expression"), None)
                key = self.value(inner) if inner is not None else None
                if isinstance(key, Unresolved) or key is None:
                    return unresolved_expression(self.pos.source(node), self.scope)
                steps.append(key)
            else:  # splats and the like
                return unresolved_expression(self.pos.source(node), self.scope)
        found = self._lookup(root, steps)
        return unresolved_expression(self.pos.source(node), self.scope) if found is _MISSING else found

    def _lookup(self, root: str, steps: list[Any]) -> Any:
        if root in self.scope.iterators and steps and steps[0] in self.scope.iterators[root]:
            return _navigate(self.scope.iterators[root][steps[0]], steps[1:])
        module = self.scope.module
        if module is None or not steps or root not in ("var", "local"):
            return _MISSING
        name = str(steps[0])
        if root == "var":
            found = module.variable(name)
            if found is _MISSING:
                return _MISSING
            value, how = found
            note = f"variable {name} = {short(value)} ({how})"
        else:
            value, notes = module.local(name)
            if value is _MISSING:
                return _MISSING
            note = "; ".join(notes)
        if note and note not in self.notes:
            self.notes.append(note)
        return _navigate(value, steps[1:])


def _navigate(value: Any, steps: list[Any]) -> Any:
    for step in steps:
        if isinstance(value, Unresolved):
            return value
        if isinstance(value, dict) and str(step) in value:
            value = value[str(step)]
        elif isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value):
            value = value[step]
        else:
            return _MISSING
    return value


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    try:
        return json.loads('"' + raw.replace("\n", "\\n").replace("\t", "\\t") + '"')
    except json.JSONDecodeError:
        return raw


def _flush(literals: list[str]) -> list[str]:
    """The literal pieces of a ``<<-`` heredoc (an interpolation between each two) with the
    least indentation of its lines removed from every line: HCL counts the spaces and
    tabs that start each line's literal text, skipping lines that are blank (a line that
    starts with an interpolation counts as not indented)."""
    least: int | None = None
    for number, literal in enumerate(literals):
        lines = literal.split("\n")
        for index, line in enumerate(lines):
            if index == 0 and number > 0:
                continue  # after an interpolation: not the start of a line
            last = index == len(lines) - 1 and number < len(literals) - 1  # an interpolation follows
            if not line.strip(" \t") and not last:
                continue  # blank
            indent = len(line) - len(line.lstrip(" \t"))
            least = indent if least is None else min(least, indent)
    if not least:
        return literals
    out = []
    for number, literal in enumerate(literals):
        lines = literal.split("\n")
        out.append(
            "\n".join(
                line if index == 0 and number > 0 else line[min(least, len(line) - len(line.lstrip(" \t"))) :]
                for index, line in enumerate(lines)
            )
        )
    return out


def _template_unescape(literal: str) -> str:
    """``$${`` and ``%%{`` in a template's literal text are a literal ``${`` and ``%{``."""
    if "$${" not in literal and "%%{" not in literal:
        return literal
    return literal.replace("$${", "${").replace("%%{", "%{")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- JSON syntax (.tf.json) -------------------------------------------------------------------------
def json_value(value: Any, evaluator: Evaluator) -> Any:
    """A value in Terraform's JSON syntax: strings are templates (``"${var.x}-a"``)."""
    if isinstance(value, str):
        if "${" not in value and "%{" not in value:
            return value
        return template_string(value, evaluator)
    if isinstance(value, list):
        return [json_value(v, evaluator) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v, evaluator) for k, v in value.items() if k != "//"}
    return value


def template_string(text: str, evaluator: Evaluator) -> Any:
    """Evaluate a JSON-syntax string as the HCL template it is."""
    source = "x = " + json.dumps(text)
    try:
        body, pos = parse_hcl(source)
    except SourceError:
        return unresolved_expression(text, evaluator.scope)
    expr = attributes(body, pos).get("x")
    if expr is None:
        return unresolved_expression(text, evaluator.scope)
    inner = Evaluator(pos, evaluator.scope)
    value = inner.value(expr)
    evaluator.notes.extend(n for n in inner.notes if n not in evaluator.notes)
    if isinstance(value, Unresolved):
        return unresolved_expression(text, evaluator.scope)
    return value


# -- a module's variables and locals ------------------------------------------------------------------
@dataclass
class ModuleCall:
    """A ``module`` block of the scan whose local ``source`` is a module directory."""

    label: str
    file: str  # the caller's file, as the scan names it
    arguments: dict[str, Any]  # name -> expression node (HCL) or value (JSON)
    pos: Positions | None  # the caller file's positions (None: JSON syntax)
    caller: ModuleValues  # the calling module's own variables and locals
    maps_providers: bool = False  # it has a ``providers`` argument (else it passes its default one)

    def argument(self, name: str) -> Any:
        value, _notes = evaluated(self.arguments[name], self.pos, Scope(self.caller))
        return _MISSING if isinstance(value, Unresolved) else value


def evaluated(node: Any, pos: Positions | None, scope: Scope) -> tuple[Any, list[str]]:
    """An HCL expression node (with its file's ``pos``) or a JSON-syntax value (``pos``
    None) evaluated in ``scope``: its value, and the notes of what it relied on."""
    evaluator = Evaluator(pos if pos is not None else Positions(b""), scope)
    value = evaluator.value(node) if pos is not None else json_value(node, evaluator)
    return value, evaluator.notes


def _merge(values: list[Any]) -> Any:
    maps = [v for v in values if v is not None]
    if not all(isinstance(v, dict) for v in maps):
        return _MISSING
    out: dict[str, Any] = {}
    for value in maps:
        out.update(value)
    return out


def _concat(values: list[Any]) -> Any:
    if not all(isinstance(v, list) for v in values):
        return _MISSING
    return [item for value in values for item in value]


def _lookup_function(values: list[Any]) -> Any:
    if len(values) not in (2, 3) or not isinstance(values[0], dict) or not isinstance(values[1], str):
        return _MISSING
    if values[1] in values[0]:
        return values[0][values[1]]
    return values[2] if len(values) == 3 else _MISSING


def _strings(values: list[Any]) -> Any:
    if len(values) != 1 or not isinstance(values[0], list) or not all(type(v) is str for v in values[0]):
        return _MISSING
    return values[0]


_FUNCTIONS = {
    "merge": _merge,
    "concat": _concat,
    "lookup": _lookup_function,
    "tomap": lambda values: values[0] if len(values) == 1 and isinstance(values[0], dict) else _MISSING,
    "tolist": _strings,
    "toset": lambda values: sorted(set(found)) if (found := _strings(values)) is not _MISSING else _MISSING,
}


def holds_unresolved(value: Any) -> bool:
    if isinstance(value, Unresolved):
        return True
    if isinstance(value, dict):
        return any(holds_unresolved(v) for v in value.values())
    if isinstance(value, list):
        return any(holds_unresolved(v) for v in value)
    return False


class ModuleValues:
    """The variables and locals of one module directory, read on first use."""

    def __init__(
        self,
        directory: Path,
        var_files: list[tuple[Path, str, str]],
        max_bytes: int,
        calls: Callable[[Path], list[ModuleCall]] | None = None,
    ) -> None:
        self.directory = directory
        self.var_files = var_files
        self.max_bytes = max_bytes
        # The module blocks of the scan that call this directory (a child module's
        # variables are what its callers pass, not its defaults).
        self._calls = calls
        self._asking: set[str] = set()  # variables being read through callers (a loop guard)
        self._loaded = False
        self.defaults: dict[str, Any] = {}
        self.values: dict[str, tuple[Any, str]] = {}  # name -> (value, where it was set)
        self.local_nodes: dict[str, tuple[Any, Any]] = {}  # name -> (node or JSON value, positions or None)
        # (type, label) of the aws_region / aws_caller_identity / aws_partition data
        # sources -> file name -> (provider, region argument's text), or None when it
        # selects a region.
        self.data_sources: dict[tuple[str, str], dict[str, tuple[str, str | None] | None]] = {}
        self._locals: dict[str, tuple[Any, list[str]]] = {}
        self._evaluating: set[str] = set()
        # Provider configuration ("aws", "aws.west") -> file declaring it -> its
        # default_tags' tags expression (node and positions, or a JSON value and None),
        # or None when it sets none.
        self.provider_tags: dict[str, dict[str, tuple[Any, Any] | None]] = {}
        self.errors: list[tuple[str, str]] = []  # (file, problem)

    def variable(self, name: str) -> Any:
        self._load()
        # A module that the scan calls is a child module: Terraform gives it what its
        # callers pass, and reads no .tfvars or -var-file for it.
        calls = self._calls(self.directory) if self._calls is not None else []
        if calls:
            return self._passed(name, calls)
        if name in self.values:
            return self.values[name]
        if name in self.defaults:
            return self.defaults[name], "its default"
        return _MISSING

    def _passed(self, name: str, calls: list[ModuleCall]) -> Any:
        """A child module's variable as its callers set it: (value, how) when every call
        of the scan gives it the same value (the argument, else the default); _MISSING
        (unresolved) when one does not resolve, or calls disagree."""
        if name in self._asking:
            return _MISSING
        self._asking.add(name)
        try:
            found = []
            for call in calls:
                if name in call.arguments:
                    value = call.argument(name)
                    how = f"from module.{call.label} in {call.file}"
                elif name in self.defaults:
                    value, how = self.defaults[name], f"its default; module.{call.label} in {call.file} sets none"
                else:
                    return _MISSING
                if value is _MISSING or holds_unresolved(value):
                    return _MISSING
                found.append((value, how))
        finally:
            self._asking.discard(name)
        if any(value != found[0][0] for value, _ in found):
            return _MISSING  # instances of the module differ: which one is unknown here
        return found[0] if len(found) == 1 else (found[0][0], f"from all {len(found)} module calls")

    def speaks_for(self, data_type: str, label: str, where: tuple[str, str | None], file: str | None) -> bool:
        """Whether data source ``data_type.label`` answers for the place ``where`` (a
        resource's provider and region argument). One this module does not declare keeps
        its usual meaning (Terraform itself rejects the reference). Declared more than once
        (a directory of unrelated files, which Terraform would reject): the declaration in
        ``file`` counts, else the others only when they agree."""
        self._load()
        declared = self.data_sources.get((data_type, label))
        if not declared:
            return True
        if file in declared:
            return declared[file] == where
        return len(set(declared.values())) == 1 and next(iter(declared.values())) == where

    def _data_source(self, data_type: str, label: str, arguments: dict[str, Any], file: str) -> None:
        if data_type not in ("aws_region", "aws_caller_identity", "aws_partition"):
            return
        declared = self.data_sources.setdefault((data_type, label), {})
        if data_type == "aws_region" and any(arguments.get(name) is not None for name in _REGION_SELECTORS):
            declared[file] = None  # names its region: not the provider's
            return
        declared[file] = (provider_name(arguments.get("provider")), _region_text(arguments.get("region")))

    def default_tags(self, provider: str, file: str | None = None) -> tuple[Any, list[str]] | None:
        """The ``default_tags`` of provider configuration ``provider`` (``aws``,
        ``aws.west``) as this module declares them: (tags, notes), the tags a map or
        Unresolved. None when it sets none. A child module that declares no such
        configuration inherits its callers' default ``aws`` (when the scan's calls pass it
        implicitly, without ``providers``, and agree); else None. Declared in more than one
        file (a directory of unrelated files, which Terraform would reject): the
        declaration in ``file`` counts, else none."""
        self._load()
        declared = self.provider_tags.get(provider) or {}
        if not declared:
            return self._inherited_tags(provider)
        if file in declared:
            where = file
        elif len(declared) == 1:
            where = next(iter(declared))
        else:
            return None
        entry = declared[where]
        if entry is None:
            return None
        value, notes = evaluated(*entry, Scope(self))
        return value, [f"default_tags of provider {provider} ({where})", *notes]

    def _inherited_tags(self, provider: str) -> tuple[Any, list[str]] | None:
        calls = self._calls(self.directory) if self._calls is not None else []
        key = f"provider {provider}"
        if provider != DEFAULT_PROVIDER or not calls or key in self._asking:
            return None
        if any(call.maps_providers for call in calls):
            return None  # an explicit providers map: which configuration it passes is not read
        self._asking.add(key)
        try:
            found = [call.caller.default_tags(provider) for call in calls]
        finally:
            self._asking.discard(key)
        first = found[0]
        if first is None or any(other != first for other in found[1:]):
            return None  # instances of the module get different tags: which one is unknown here
        value, notes = first
        return value, [f"{notes[0]}, passed by module.{calls[0].label} in {calls[0].file}", *notes[1:]]

    def _provider(self, name: str, alias: Any, tags: Any, pos: Any, file: str) -> None:
        full = f"{name}.{alias}" if isinstance(alias, str) and alias else name
        self.provider_tags.setdefault(full, {})[file] = None if tags is _MISSING else (tags, pos)

    def local(self, name: str) -> tuple[Any, list[str]]:
        self._load()
        if name in self._locals:
            return self._locals[name]
        if name not in self.local_nodes or name in self._evaluating:
            return _MISSING, []
        self._evaluating.add(name)
        value, notes = evaluated(*self.local_nodes[name], Scope(self))
        self._evaluating.discard(name)
        if isinstance(value, Unresolved):
            value = _MISSING
        self._locals[name] = (value, notes)
        return self._locals[name]

    # -- loading ----------------------------------------------------------------------------------
    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        files = sorted(self.directory.iterdir()) if self.directory.is_dir() else []
        for path in files:
            if path.name.endswith(".tf") and path.is_file():
                self._read_module_file(path, json_syntax=False)
            elif path.name.endswith(".tf.json") and path.is_file():
                self._read_module_file(path, json_syntax=True)
        # Terraform's precedence, lowest first: terraform.tfvars, terraform.tfvars.json,
        # *.auto.tfvars(.json) in lexical order, then -var-file in the order given.
        auto = [self.directory / "terraform.tfvars", self.directory / "terraform.tfvars.json"]
        auto += [p for p in files if p.name.endswith((".auto.tfvars", ".auto.tfvars.json"))]
        for path in auto:
            if path.is_file():
                self.read_tfvars(path, path.name)
        for path, display, text in self.var_files:  # read when the options were checked
            self.read_tfvars(path, display, text)

    def _text(self, path: Path, display: str) -> str | None:
        text, problem = read_text(path, self.max_bytes)
        if problem is not None:
            self.errors.append((display, problem))
        return text

    def _read_module_file(self, path: Path, json_syntax: bool) -> None:
        text = self._text(path, path.name)
        if text is None:
            return
        try:
            if json_syntax:
                self._read_json_module(json.loads(text), path.name)
            else:
                self._read_hcl_module(text, path.name)
        except (SourceError, json.JSONDecodeError, RecursionError):
            return  # the file's own scan reports it if it holds a distribution configuration

    def _read_hcl_module(self, text: str, file: str) -> None:
        body, pos = parse_hcl(text)
        for block in (c for c in named(body) if c.type == "block") if body is not None else ():
            kind, labels, inner = block_parts(block, pos)
            if kind == "variable" and labels:
                default = attributes(inner, pos).get("default")
                if default is not None:
                    self.defaults[labels[0]] = Evaluator(pos).value(default)
            elif kind == "locals":
                for name, node in attributes(inner, pos).items():
                    self.local_nodes[name] = (node, pos)
            elif kind == "data" and len(labels) == 2:
                arguments = {name: pos.source(node) for name, node in attributes(inner, pos).items()}
                self._data_source(labels[0], labels[1], arguments, file)
            elif kind == "provider" and labels == ["aws"]:
                alias = attributes(inner, pos).get("alias")
                tags: Any = _MISSING
                for child in (c for c in named(inner) if c.type == "block") if inner is not None else ():
                    child_kind, _, child_inner = block_parts(child, pos)
                    if child_kind == "default_tags":
                        tags = attributes(child_inner, pos).get("tags", _MISSING)
                self._provider("aws", Evaluator(pos).value(alias) if alias is not None else None, tags, pos, file)

    def _read_json_module(self, document: Any, file: str) -> None:
        if not isinstance(document, dict):
            return
        variables = document.get("variable")
        for entry in variables if isinstance(variables, list) else [variables]:
            for name, spec in (entry or {}).items() if isinstance(entry, dict) else ():
                if isinstance(spec, dict) and "default" in spec:
                    self.defaults[name] = spec["default"]
        data = document.get("data")
        for entry in data if isinstance(data, list) else [data]:
            for data_type, by_label in entry.items() if isinstance(entry, dict) else ():
                for label, spec in by_label.items() if isinstance(by_label, dict) else ():
                    for body in spec if isinstance(spec, list) else [spec]:
                        if isinstance(body, dict):
                            self._data_source(data_type, label, body, file)
        providers = document.get("provider")
        for entry in providers if isinstance(providers, list) else [providers]:
            configs = entry.get("aws") if isinstance(entry, dict) else None
            for config in configs if isinstance(configs, list) else [configs]:
                if not isinstance(config, dict):
                    continue
                defaults = config.get("default_tags")
                defaults = defaults[0] if isinstance(defaults, list) and defaults else defaults
                tags = defaults.get("tags", _MISSING) if isinstance(defaults, dict) else _MISSING
                self._provider("aws", config.get("alias"), tags, None, file)
        locals_ = document.get("locals")
        for entry in locals_ if isinstance(locals_, list) else [locals_]:
            for name, value in (entry or {}).items() if isinstance(entry, dict) else ():
                if name != "//":
                    self.local_nodes[name] = (value, None)

    def read_tfvars(self, path: Path, display: str, text: str | None = None) -> None:
        """Take the values a ``.tfvars`` (or ``.tfvars.json``) file sets; a problem is
        added to ``errors`` naming ``display``."""
        if text is None:
            text = self._text(path, display)
            if text is None:
                return
        if path.name.endswith(".json"):
            try:
                document = json.loads(text)
            except json.JSONDecodeError as exc:
                self.errors.append((display, f"line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"))
                return
            if not isinstance(document, dict):
                self.errors.append((display, "a .tfvars.json file must hold an object"))
                return
            self.values.update({name: (value, f"from {display}") for name, value in document.items()})
            return
        try:
            body, pos = parse_hcl(text)
        except SourceError as exc:
            self.errors.append((display, str(exc)))
            return
        for name, node in attributes(body, pos).items():
            value = Evaluator(pos).value(node)
            if not isinstance(value, Unresolved):
                self.values[name] = (value, f"from {display}")
