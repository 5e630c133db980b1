"""Parse JSON and keep the position of every value.

Values come from the standard library's ``json`` (exact JSON semantics and its
line/column error messages). Positions come from libyaml's composer run over the same
text: JSON is valid YAML flow syntax and libyaml is C, about four times faster than a
pure-Python JSON source mapper. The rare JSON text libyaml refuses (a key longer than
1024 characters, some control characters) falls back to ``json_source_map``.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from auditor.model import Span, join_pointer

try:  # PyYAML wheels ship libyaml; the pure-Python loader is the slow fallback.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


class JSONSyntaxError(ValueError):
    """Malformed JSON; the message carries line and column."""

    def __init__(self, msg: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: invalid JSON: {msg}")
        self.line = line
        self.column = column


class _Mismatch(Exception):
    pass


def loads_with_spans(text: str) -> tuple[Any, dict[str, Span]]:
    """Return the decoded document and a map from JSON Pointer to its value's span."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JSONSyntaxError(exc.msg, exc.lineno, exc.colno) from None
    except RecursionError:
        raise JSONSyntaxError("nesting too deep", 1, 1) from None
    try:
        spans = _spans_from_yaml(text, value)
    except (yaml.YAMLError, _Mismatch, RecursionError, ValueError):
        spans = _spans_from_json_source_map(text)
    return value, spans


def _span(node: yaml.Node) -> Span:
    s, e = node.start_mark, node.end_mark
    return Span(s.line + 1, s.column + 1, e.line + 1, e.column + 1)


def _spans_from_yaml(text: str, value: Any) -> dict[str, Span]:
    root = yaml.compose(text, Loader=_Loader)
    spans: dict[str, Span] = {}
    # Iterative walk: documents can nest deeper than Python's recursion limit.
    stack: list[tuple[yaml.Node, Any, str]] = [(root, value, "")]
    while stack:
        node, val, pointer = stack.pop()
        spans[pointer] = _span(node)
        if isinstance(node, yaml.MappingNode):
            if not isinstance(val, dict):
                raise _Mismatch(pointer)
            # A later duplicate key wins, as in json.loads.
            members = {key_node.value: value_node for key_node, value_node in node.value}
            for key, value_node in members.items():
                if key not in val:
                    raise _Mismatch(pointer)
                stack.append((value_node, val[key], join_pointer(pointer, key)))
        elif isinstance(node, yaml.SequenceNode):
            if not isinstance(val, list) or len(val) != len(node.value):
                raise _Mismatch(pointer)
            for index, item in enumerate(node.value):
                stack.append((item, val[index], join_pointer(pointer, index)))
        elif isinstance(val, (dict, list)):
            raise _Mismatch(pointer)
    return spans


def _spans_from_json_source_map(text: str) -> dict[str, Span]:
    from json_source_map import calculate

    spans = {}
    for pointer, entry in calculate(text).items():
        s, e = entry.value_start, entry.value_end
        spans[pointer] = Span(s.line + 1, s.column + 1, e.line + 1, e.column + 1)
    return spans
