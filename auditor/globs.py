"""Path globs for ``exclude``, ``extend-exclude`` and ``per-path-ignores``.

The semantics are ruff's (and .gitignore's), relative to a base directory (the config
file's, else the common directory of the scanned paths):

- a pattern without ``/`` matches a file or directory name at any depth
  (``fixtures``, ``*.draft.json``);
- a pattern with ``/`` matches the path from the base directory (``legacy/*.json``,
  ``stacks/**/test``); a leading or trailing ``/`` only anchors or marks a directory;
- ``*`` and ``?`` stay within one path component, ``**`` spans components,
  ``[abc]`` / ``[!abc]`` are character classes;
- a pattern that matches a directory matches everything below it.

Hand-written in a few lines: the library that does this (pathspec) costs ~70 ms of
import time, more than a whole one-file scan's start-up.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path


def _translate(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


class PathGlob:
    """One pattern, compiled."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        body = pattern.strip().rstrip("/")
        self.anchored = "/" in body
        body = body.lstrip("/")
        self._regex = re.compile(_translate(body) + r"\Z", re.DOTALL)

    def matches(self, relative: str, *, itself: bool = False) -> bool:
        """Whether a ``/``-separated path (relative to the base directory) matches.

        A match on a directory covers everything below it; ``itself=True`` tests only
        the path itself, for a walk that prunes matched directories as it descends (so
        an excluded directory the user names explicitly is still scanned, as in ruff).
        """
        parts = [p for p in relative.split("/") if p]
        if itself:
            candidates = [relative] if self.anchored else parts[-1:]
        elif self.anchored:
            candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        else:
            candidates = parts
        return any(self._regex.match(c) for c in candidates)


class PathGlobs:
    """Patterns relative to one base directory, matched against real paths."""

    def __init__(self, patterns: Sequence[str], base: Path) -> None:
        self.globs = [PathGlob(p) for p in patterns]
        self.base = Path(os.path.abspath(base))

    def relative(self, path: Path | str) -> tuple[str, bool]:
        """The path relative to the base (``/``-separated) and whether it is inside it."""
        absolute = Path(os.path.abspath(path))
        try:
            return absolute.relative_to(self.base).as_posix(), True
        except ValueError:
            return absolute.as_posix(), False

    def first_match(self, path: Path | str, *, itself: bool = False) -> str | None:
        """The first pattern that matches the path, or None (``itself``: see ``PathGlob.matches``)."""
        relative, inside = self.relative(path)
        for glob in self.globs:
            if (inside or not glob.anchored) and glob.matches(relative, itself=itself):
                return glob.pattern
        return None
