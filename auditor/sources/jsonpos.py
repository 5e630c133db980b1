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

import bisect
import json
import re
import sys
from collections.abc import Iterator, Mapping
from json.decoder import WHITESPACE, scanstring
from typing import Any

from auditor.model import Span
from auditor.sources import MAX_NESTING, NOT_JSON, SourceError, json_document

_NEWLINE = re.compile("\n")
_SCANNER = json.JSONDecoder().scan_once  # the C scanner: (text, index) -> (value, end)


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
    return value, LazySpans(text)


_SURROGATE_ESCAPE = re.compile(r"(\\*)\\u[dD]([89abAB]|[c-fC-F])[0-9a-fA-F]{2}")
_LOW_SURROGATE_ESCAPE = re.compile(r"\\u[dD][c-fC-F][0-9a-fA-F]{2}")


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
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]|-?[0-9]+')


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
    """Pointer → Span for a valid JSON text, computed on first use and memoised."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._root = WHITESPACE.match(text, 0).end()
        # container start offset -> {token: (start, end)}
        self._children: dict[int, dict[str, tuple[int, int]]] = {}
        self._newlines: list[int] | None = None

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
            for token, (child, _) in self._members(start).items():
                stack.append((pointer + "/" + token.replace("~", "~0").replace("/", "~1"), child))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    # -- lookups ---------------------------------------------------------------------
    def _find(self, pointer: str) -> tuple[int, int] | None:
        start = self._root
        end = None
        if pointer:
            if not pointer.startswith("/"):
                return None
            for token in pointer[1:].split("/"):
                found = self._members(start).get(_unescape(token))
                if found is None:
                    return None
                start, end = found
        if end is None:
            end = _SCANNER(self._text, start)[1]
        return start, end

    def _members(self, start: int) -> dict[str, tuple[int, int]]:
        """Offsets of every direct child of the container at ``start`` (empty for scalars)."""
        cached = self._children.get(start)
        if cached is not None:
            return cached
        text = self._text
        members: dict[str, tuple[int, int]] = {}
        opener = text[start]
        ws = WHITESPACE.match
        i = ws(text, start + 1).end()
        if opener == "{":
            while text[i] != "}":
                key, i = scanstring(text, i + 1)
                i = ws(text, ws(text, i).end() + 1).end()  # past ':'
                _, end = _SCANNER(text, i)
                members[key] = (i, end)  # a later duplicate wins, as in json.loads
                i = ws(text, end).end()
                if text[i] == ",":
                    i = ws(text, i + 1).end()
        elif opener == "[":
            index = 0
            while text[i] != "]":
                _, end = _SCANNER(text, i)
                members[str(index)] = (i, end)
                index += 1
                i = ws(text, end).end()
                if text[i] == ",":
                    i = ws(text, i + 1).end()
        self._children[start] = members
        return members

    def _position(self, offset: int) -> tuple[int, int]:
        if self._newlines is None:
            self._newlines = [m.start() for m in _NEWLINE.finditer(self._text)]
        line = bisect.bisect_left(self._newlines, offset)
        line_start = self._newlines[line - 1] + 1 if line else 0
        return line + 1, offset - line_start + 1

    def _span(self, start: int, end: int) -> Span:
        return Span(*self._position(start), *self._position(end))
