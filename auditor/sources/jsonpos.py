"""Parse JSON and find where any value sits in the text, on demand.

Values come from the standard library's ``json`` (exact JSON semantics, line/column
errors). Positions are found lazily: only the pointers a finding or error asks for
are located. Each lookup descends from the root; at every container it records the
offsets of all children once, skipping over each child value with the standard
library's C scanner, so a file is scanned at most once per nesting level however
many findings it has.

bench/bench_scan.py measures this against mapping every value up front: libyaml's
composer and the json-source-map library are 28x and 60x slower than json.loads on
the benchmark files, which made position mapping most of a large scan's time.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from json.decoder import WHITESPACE, scanstring
from typing import Any

from auditor.model import Span
from auditor.patterns import LazyPattern
from auditor.sources import MAX_NESTING, NOT_JSON, SourceError, json_document, json_layout
from auditor.textlines import TextLines

_SCANNER = json.JSONDecoder().scan_once  # the C scanner: (text, index) -> (value, end)
# In valid JSON: what follows a key (up to its value) and a value (up to the next member).
_AFTER_KEY = re.compile(r"[ \t\n\r]*:[ \t\n\r]*")
_AFTER_VALUE = re.compile(r"[ \t\n\r]*(?:,[ \t\n\r]*)?")


class JSONSyntaxError(SourceError):
    """Malformed JSON; the message carries line and column (a SourceError for loaders)."""

    def __init__(self, msg: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: invalid JSON: {msg}")
        self.line = line
        self.column = column


def loads_with_spans(text: str) -> tuple[Any, LazySpans]:
    """Return the decoded document and a lazy map from JSON Pointer to the value's span.

    Valid JSON that Python cannot hold (an integer of more digits than
    ``sys.get_int_max_str_digits()``, nesting past the recursion limit) is a
    SourceError naming the line and column where it happens.
    """
    value = json_document(text)  # decoded once, whichever source asked first
    if value is NOT_JSON:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise JSONSyntaxError(exc.msg, exc.lineno, exc.colno) from None
        except ValueError as exc:  # int() refused a huge literal
            raise _huge_integer(text, exc) from None
        except RecursionError:
            raise _too_deep(text) from None
    offset = lone_surrogate(text)
    if offset is not None:
        line, column = _line_column(text, offset)
        raise SourceError(f"line {line}, column {column}: {text[offset : offset + 6]} is half a UTF-16 pair, not text")
    root, repeated_keys = json_layout(text)
    return value, LazySpans(text, root, repeated_keys=repeated_keys)


_SURROGATE_ESCAPE = LazyPattern(r"(\\*)\\u[dD]([89abAB]|[c-fC-F])[0-9a-fA-F]{2}")
_LOW_SURROGATE_ESCAPE = LazyPattern(r"\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def lone_surrogate(text: str) -> int | None:
    """Offset of a ``\\uD800``-``\\uDFFF`` escape that is not half of a pair, or None.

    JSON lets such an escape through, but the string it makes is not Unicode text:
    it cannot be encoded, hashed for a fingerprint or written to any report.
    """
    if "\\u" not in text:
        return None
    position = 0
    while True:
        match = _SURROGATE_ESCAPE.search(text, position)
        if match is None:
            return None
        position = match.end()
        if len(match.group(1)) % 2:  # an escaped backslash followed by "u": not an escape
            continue
        start = match.start() + len(match.group(1))
        if match.group(2) in "89abAB" and _LOW_SURROGATE_ESCAPE.match(text, match.end()):
            position = match.end() + 6  # a proper pair
            continue
        return start


# Strings (skipped whole, so brackets and digits inside them do not count), brackets, numbers.
_TOKENS = LazyPattern(r'"(?:[^"\\]|\\.)*"|[\[\]{}]|-?[0-9]+')


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _huge_integer(text: str, exc: ValueError) -> SourceError:
    limit = sys.get_int_max_str_digits()
    for token in _TOKENS.finditer(text):
        digits = len(token.group().lstrip("-"))
        if token.group()[0] != '"' and limit and digits > limit:
            line, column = _line_column(text, token.start())
            return SourceError(f"line {line}, column {column}: integer with {digits} digits, more than {limit}")
    return SourceError(f"invalid JSON: {exc}")


def _too_deep(text: str) -> SourceError:
    depth = 0
    for token in _TOKENS.finditer(text):
        char = token.group()[0]
        if char in "[{":
            depth += 1
            if depth > MAX_NESTING:
                line, column = _line_column(text, token.start())
                return SourceError(f"line {line}, column {column}: nested deeper than {MAX_NESTING} levels")
        elif char in "]}":
            depth -= 1
    return SourceError(f"nested deeper than {MAX_NESTING} levels")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


class LazySpans(Mapping[str, Span]):
    """Pointer → Span for a valid JSON text, computed on first use and memoised.

    A lookup walks down the pointer's path. In each container on the way it reads
    members only up to the one it needs, skipping each sibling with the C scanner, and
    it never decodes a container it descends into: a file is decoded at most once more
    however many findings it has, and the elements of a top-level list not at all when
    ``json_document`` recorded where they start (``root``).
    """

    def __init__(self, text: str, root: dict[str, int] | None = None, *, repeated_keys: bool = True) -> None:
        self._text = text
        # Whether an object may repeat a key (then the last one is the value json.loads
        # kept, and a lookup must read each object on its way to the end).
        self._repeated_keys = repeated_keys
        self._root = WHITESPACE.match(text, 0).end()
        # container start offset -> [members found so far (token -> value start),
        #                            offset to read on from (-1: all read), next list index]
        self._children: dict[int, list] = {}
        if root is not None:
            self._children[self._root] = [dict(root), -1, len(root)]
        self._ends: dict[int, int] = {}
        self.lines = TextLines(text)

    # -- Mapping protocol ----------------------------------------------------------
    def __getitem__(self, pointer: str) -> Span:
        offsets = self._find(pointer)
        if offsets is None:
            raise KeyError(pointer)
        return self._span(*offsets)

    def __iter__(self) -> Iterator[str]:
        # Only for tests and debugging: walks the whole document.
        stack = [("", self._root)]
        while stack:
            pointer, start = stack.pop()
            yield pointer
            for token, child in self._all_members(start).items():
                stack.append((pointer + "/" + token.replace("~", "~0").replace("/", "~1"), child))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    # -- lookups ---------------------------------------------------------------------
    def _find(self, pointer: str) -> tuple[int, int] | None:
        if pointer and not pointer.startswith("/"):
            return None
        tokens = pointer[1:].split("/") if pointer else []
        if "~" in pointer:
            tokens = [_unescape(token) for token in tokens]
        path = [self._root]
        for token in tokens:
            found = self._member(path[-1], token)
            if found is None:
                break
            path.append(found)
        if len(path) > 1 and self._repeated_keys:
            # Read each container on the way to its end, innermost first (so the child a
            # lookup went into is skipped by its known end, never decoded): a member that
            # comes again later in its object is the one json.loads kept.
            for container in reversed(path[:-1]):
                self._finish(container)
            for container, token, child in zip(path, tokens, path[1:], strict=False):
                if self._children[container][0][token] != child:
                    return self._find(pointer)  # a duplicate key: look again along the later one
        if len(path) <= len(tokens):
            return None
        return path[-1], self._skip(path[-1])

    def _member(self, start: int, token: str) -> int | None:
        """Where the child ``token`` of the container at ``start`` begins, or None."""
        state = self._state(start)
        if state is None:
            return None
        members = state[0]
        found = members.get(token)
        if found is not None or state[1] < 0:
            return found
        self._read_on(start, state, token)
        return members.get(token)

    def _state(self, start: int) -> list | None:
        state = self._children.get(start)
        if state is None:
            if self._text[start] not in "{[":
                return None  # a scalar has no children
            state = self._children[start] = [{}, WHITESPACE.match(self._text, start + 1).end(), 0]
        return state

    def _finish(self, start: int) -> None:
        state = self._children[start]
        if state[1] >= 0:
            self._read_on(start, state, None)

    def _all_members(self, start: int) -> dict[str, int]:
        state = self._state(start)
        if state is None:
            return {}
        if state[1] >= 0:
            self._read_on(start, state, None)
        return state[0]

    def _read_on(self, start: int, state: list, wanted: str | None) -> None:
        """Record members of the container at ``start`` until ``wanted`` is found or none are left.

        The member found is not skipped (its value may be the next container a lookup
        descends into, and is then read by that lookup); the next read skips it first.
        Reading to the closing bracket records where the container ends.
        """
        text = self._text
        ends = self._ends
        scan = _SCANNER
        after_key, after_value = _AFTER_KEY.match, _AFTER_VALUE.match
        members, i, index = state
        is_object = text[start] == "{"
        closer = "}" if is_object else "]"
        if index < 0:  # the last member recorded is still to be skipped
            index = -index - 1
            end = ends.get(i)
            i = after_value(text, scan(text, i)[1] if end is None else end).end()
        while text[i] != closer:
            if is_object:
                key, i = scanstring(text, i + 1)
                i = after_key(text, i).end()
            else:
                key = str(index)
                index += 1
            members[key] = i  # a later duplicate wins, as in json.loads
            if key == wanted:
                state[1], state[2] = i, -index - 1
                return
            i = after_value(text, scan(text, i)[1]).end()
        state[1], state[2] = -1, index
        ends[start] = i + 1

    def _skip(self, start: int) -> int:
        """Where the value at ``start`` ends: known once its container was read, else decoded."""
        end = self._ends.get(start)
        if end is None:
            end = self._ends[start] = _SCANNER(self._text, start)[1]
        return end

    def _span(self, start: int, end: int) -> Span:
        position = self.lines.position
        return Span(*position(start), *position(end))
