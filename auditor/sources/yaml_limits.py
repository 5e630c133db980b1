"""Limits on a composed YAML document: alias expansion, nesting depth, integer size.

libyaml's composer gives an anchor and all its aliases one shared node, so composing
a "billion laughs" document (ten aliases of ten aliases of ... a short list) is cheap,
while turning it into Python values would build billions of them. Before anything is
converted, ``check_composed`` counts what the aliases expand to, once per distinct node,
and stops past a budget proportional to the document's own size: at most one node per
character (at least ``ALIAS_FLOOR``), which is about the most a document of that size
could hold without aliases. So aliases never make a file cost more than the file size
limit already allows. An alias inside its own anchor (a cycle) is an error too.

The same pass finds nesting deeper than ``MAX_NESTING`` and plain integers longer than
Python converts (``sys.get_int_max_str_digits()``), each reported at its line and column.
"""

from __future__ import annotations

import re
import sys

import yaml

from auditor.sources import MAX_NESTING, SourceError

ALIAS_FLOOR = 10_000
_PLAIN_INT = re.compile(r"[-+]?[0-9]+")
_ANCHOR = re.compile(r"&([^\s,\[\]{}]+)")


def _at(mark, message: str) -> SourceError:
    return SourceError(f"line {mark.line + 1}, column {mark.column + 1}: {message}")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _anchor_name(node: yaml.Node, text: str) -> str:
    match = _ANCHOR.match(text, node.start_mark.index)
    return f"*{match.group(1)}" if match else "an alias"


def _plain_within_limits(root: yaml.Node) -> bool:
    """For a document without aliases (each node once): whether it nests no deeper than
    ``MAX_NESTING`` and holds no integer too long to convert. One pass with no bookkeeping
    per node; when it says no, the full pass below finds the node to report."""
    digit_limit = sys.get_int_max_str_digits()
    scalar, sequence = yaml.ScalarNode, yaml.SequenceNode
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if isinstance(node, scalar):
            value = node.value
            if digit_limit and len(value) > digit_limit and node.style in (None, "") and _PLAIN_INT.fullmatch(value):
                return False
            continue
        if depth > MAX_NESTING:
            return False
        depth += 1
        if isinstance(node, sequence):
            for child in node.value:
                push((child, depth))
        else:
            for key, value in node.value:
                push((key, depth))
                push((value, depth))
    return True


def check_composed(root: yaml.Node | None, text: str) -> bool:
    """Raise SourceError if ``root`` expands past the alias budget, loops, nests or counts
    too much; return whether any node is reached twice (the document uses an alias)."""
    if root is None:
        return False
    if "&" not in text and _plain_within_limits(root):
        return False  # no anchor, so no alias: nothing shared to expand, and nothing too deep or long
    shared = False
    budget = max(ALIAS_FLOOR, len(text))
    digit_limit = sys.get_int_max_str_digits()
    size: dict[int, int] = {}  # id(node) -> nodes in its full expansion
    height: dict[int, int] = {}  # id(node) -> collections nested in its expansion, itself included
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        key = id(node)
        if expanded:
            visiting.discard(key)
            children = _children(node)
            total = 1 + sum(size[id(child)] for child in children)
            if total > budget:
                raise _at(
                    node.start_mark,
                    f"YAML aliases expand this value to more than {budget:,} nodes, the budget for a document "
                    f"of {len(text):,} characters (aliases may not make a document bigger than one without "
                    "them could be)",
                )
            size[key] = total
            nested = max((height[id(child)] for child in children), default=0)
            height[key] = nested + 1 if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)) else 0
            continue
        if key in size:
            shared = True
            continue
        if isinstance(node, yaml.ScalarNode):
            if node.style in (None, "") and digit_limit and _PLAIN_INT.fullmatch(node.value):
                digits = len(node.value.lstrip("+-"))
                if digits > digit_limit:
                    raise _at(node.start_mark, f"integer with {digits} digits, more than {digit_limit}")
            size[key], height[key] = 1, 0
            continue
        visiting.add(key)
        stack.append((node, True))
        for child in reversed(_children(node)):
            if id(child) in visiting:
                raise _at(child.start_mark, f"YAML alias refers to itself ({_anchor_name(child, text)})")
            stack.append((child, False))  # one already counted is an alias: marked when popped
    if height[id(root)] > MAX_NESTING:
        node, level = root, 1
        while level <= MAX_NESTING:
            node = max(_children(node), key=lambda child: height[id(child)])
            level += 1
        raise _at(node.start_mark, f"nested deeper than {MAX_NESTING} levels")
    return shared
