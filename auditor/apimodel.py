"""What the Image Builder API defines, read from the generated shape table.

Used by sources (type checks) and by IBD016 (unknown members). Never imports botocore.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor._api_model import REQUEST_ONLY_MEMBERS, SHAPES
from auditor.model import Unresolved, join_pointer

ROOT_SHAPE = "DistributionConfiguration"

_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}
_EXPECTED = {
    "structure": "an object",
    "map": "an object",
    "list": "a list",
    "string": "a string",
    "integer": "an integer",
    "long": "an integer",
    "boolean": "a boolean",
}


def shape(name: str) -> dict[str, Any]:
    return SHAPES[name]


def members(shape_name: str) -> dict[str, str]:
    return SHAPES[shape_name].get("members", {})


def enum(shape_name: str) -> list[str]:
    return list(SHAPES[shape_name].get("enum", ()))


def pattern(shape_name: str) -> str | None:
    return SHAPES[shape_name].get("pattern")


def describe(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _type_ok(kind: str, value: Any) -> bool:
    if kind in ("structure", "map"):
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind in ("integer", "long"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    return True


# Per shape, what a value of it must be when it is a leaf the type check need not descend
# into: the exact Python type JSON decodes it to. A member of another type goes the slow way.
_LEAF_TYPES = {"string": str, "boolean": bool, "integer": int, "long": int}
_LEAF: dict[str, type] = {
    name: _LEAF_TYPES[spec["type"]] for name, spec in SHAPES.items() if spec["type"] in _LEAF_TYPES
}


def check_types(config: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Check every member the API defines against its type.

    Returns the configuration with each wrongly typed value replaced by an
    :class:`Unresolved` marker (so rules skip it instead of crashing or guessing), and
    the list of ``(pointer, message)`` problems. Unknown members are left as they are
    for IBD016. Only the objects and lists on the way to a replaced value are copied:
    a well-typed configuration comes back as it is.
    """
    problems: list[tuple[str, str]] = []
    return _checked(config, ROOT_SHAPE, (), problems), problems


def _checked(value: Any, shape_name: str, path: tuple, problems: list[tuple[str, str]]) -> Any:
    # Paths travel as token tuples and become pointers only for a problem: joining a
    # pointer for every node was a third of a large scan's time.
    if isinstance(value, Unresolved):
        return value
    spec = SHAPES[shape_name]
    kind = spec["type"]
    if not _type_ok(kind, value):
        problems.append((join_pointer("", *path), f"expected {_EXPECTED[kind]}, got {describe(value)}"))
        return Unresolved(f"<invalid: {describe(value)}>")
    leaf = _LEAF
    if kind == "structure":
        known = spec["members"]
        copy = None
        for key, item in value.items():
            member = known.get(key)
            if member is None or type(item) is leaf.get(member):
                continue
            new = _checked(item, member, (*path, key), problems)
            if new is not item:
                if copy is None:
                    copy = dict(value)
                copy[key] = new
        return value if copy is None else copy
    if kind == "list" or kind == "map":
        member = spec["member"] if kind == "list" else spec["value"]
        expected = leaf.get(member)
        pairs = enumerate(value) if kind == "list" else value.items()
        copy = None
        for key, item in pairs:
            if type(item) is expected:
                continue
            new = _checked(item, member, (*path, key), problems)
            if new is not item:
                if copy is None:
                    copy = list(value) if kind == "list" else dict(value)
                copy[key] = new
        return value if copy is None else copy
    return value


def suggest(name: str, candidates: list[str]) -> str | None:
    """The closest defined member for a misspelt one, case-insensitive first."""
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered:
        return lowered[name.lower()]
    import difflib  # only for a misspelt member

    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


# Per structure shape, the members worth descending into for unknown members:
# member -> (its structure shape, whether it is a list of them).
def _nested_members() -> dict[str, dict[str, tuple[str, bool]]]:
    out: dict[str, dict[str, tuple[str, bool]]] = {}
    for name, spec in SHAPES.items():
        if spec["type"] != "structure":
            continue
        out[name] = {}
        for member, member_shape in spec["members"].items():
            kind = SHAPES[member_shape]["type"]
            if kind == "structure":
                out[name][member] = (member_shape, False)
            elif kind == "list" and SHAPES[SHAPES[member_shape]["member"]]["type"] == "structure":
                out[name][member] = (SHAPES[member_shape]["member"], True)
    return out


_NESTED = _nested_members()


def unknown_members(config: dict[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    """Yield ``(pointer of the member, shape it sits in, suggestion)`` for undefined members."""
    found: list[tuple[str, str, str | None]] = []
    _unknown(config, ROOT_SHAPE, (), found)
    return iter(found)


def _unknown(value: dict, shape_name: str, path: tuple, found: list) -> None:
    known = SHAPES[shape_name]["members"]
    nested = _NESTED[shape_name]
    for key, item in value.items():
        if key not in known:
            found.append((join_pointer("", *path, key), shape_name, suggest(key, sorted(known))))
            continue
        inner = nested.get(key)
        if inner is None:
            continue
        child, is_list = inner
        if not is_list:
            if isinstance(item, dict):
                _unknown(item, child, (*path, key), found)
        elif isinstance(item, list):
            for i, entry in enumerate(item):
                if isinstance(entry, dict):
                    _unknown(entry, child, (*path, key, i), found)


def unresolved_objects(config: dict[str, Any]) -> Iterator[tuple[str, str, Unresolved]]:
    """Yield ``(pointer, shape name, value)`` for each object the source could not resolve.

    An unresolved structure (``AmiDistributionConfiguration: !ImportValue x``) or list of
    structures (``Distributions: !Ref x``) hides every member a rule would check; the
    engine lists each as "could not verify". Unresolved strings, maps and lists of
    strings are left to the rules that read them.
    """

    def walk(value: Any, shape_name: str, path: tuple) -> Iterator[tuple[str, str, Unresolved]]:
        spec = SHAPES[shape_name]
        kind = spec["type"]
        if isinstance(value, Unresolved):
            member = SHAPES[spec["member"]]["type"] if kind == "list" else None
            if kind == "structure" or member == "structure":
                yield join_pointer("", *path), shape_name, value
            return
        if kind == "structure" and isinstance(value, dict):
            known = spec["members"]
            for key, item in value.items():
                if key in known and (isinstance(item, (dict, list)) or type(item) is Unresolved):
                    yield from walk(item, known[key], (*path, key))
        elif kind == "list" and isinstance(value, list) and SHAPES[spec["member"]]["type"] == "structure":
            for i, item in enumerate(value):
                yield from walk(item, spec["member"], (*path, i))

    yield from walk(config, ROOT_SHAPE, ())


__all__ = [
    "REQUEST_ONLY_MEMBERS",
    "ROOT_SHAPE",
    "check_types",
    "enum",
    "members",
    "pattern",
    "shape",
    "suggest",
    "unknown_members",
    "unresolved_objects",
]
