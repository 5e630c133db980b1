"""Regular expressions compiled the first time they are used.

Most runs use few of the patterns the modules define (a scan of JSON files never parses
a suppression comment); compiling them all at import was a measurable part of a one-file
scan's start-up.
"""

from __future__ import annotations

import re
from collections.abc import Iterator


class LazyPattern:
    """``re.compile(pattern, flags)``, done on first use; the methods scans call."""

    __slots__ = ("_compiled", "flags", "pattern")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern, self.flags = pattern, flags
        self._compiled: re.Pattern[str] | None = None

    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self.pattern, self.flags)
        return self._compiled

    def match(self, string: str, *args: int) -> re.Match[str] | None:
        return self.compiled().match(string, *args)

    def fullmatch(self, string: str, *args: int) -> re.Match[str] | None:
        return self.compiled().fullmatch(string, *args)

    def search(self, string: str, *args: int) -> re.Match[str] | None:
        return self.compiled().search(string, *args)

    def finditer(self, string: str, *args: int) -> Iterator[re.Match[str]]:
        return self.compiled().finditer(string, *args)

    def sub(self, repl, string: str, count: int = 0) -> str:
        return self.compiled().sub(repl, string, count)
