"""Source lines around each finding, read once, carried with the finding.

The HTML report shows them, and the JSON report embeds them (``snippet`` on each
finding), so that ``ib-audit merge`` can build an HTML page from JSON reports without
ever opening a file a report names: a crafted report could otherwise make the page
include any local file (``/proc/self/environ`` and its AWS secret key).

Only files this run itself loaded are read, through the same bounded reader that
refuses FIFOs and devices.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from auditor.model import AuditResult, Finding, Snippet, Span, evolve
from auditor.sources import read_text
from auditor.textlines import TextLines

SNIPPET_CONTEXT = 1  # lines shown above and below the finding's own
SNIPPET_MAX_LINES = 8
SNIPPET_MAX_WIDTH = 200


def clip(line: str) -> str:
    """A line cut to SNIPPET_MAX_WIDTH characters (an ellipsis marks the cut)."""
    return line if len(line) <= SNIPPET_MAX_WIDTH else line[: SNIPPET_MAX_WIDTH - 1] + "\u2026"


def attach_snippets(result: AuditResult, max_bytes: int) -> AuditResult:
    """``result`` with a Snippet on every finding located in a file this run loaded."""
    loaded = {t.source_map.file for t in result.targets if t.source_map is not None}
    cache: dict[str, list[str] | None] = {}

    def lines_of(file: str) -> list[str] | None:
        if file not in cache:
            text, problem = read_text(Path(file), max_bytes)
            cache[file] = text.splitlines() if problem is None and text is not None else None
        return cache[file]

    findings = []
    for f in result.findings:
        loc = f.location
        lines = lines_of(loc.file) if loc.file in loaded and loc.span is not None else None
        if lines and loc.span is not None:
            first = max(1, loc.span.start_line - SNIPPET_CONTEXT)
            last = min(len(lines), loc.span.end_line + SNIPPET_CONTEXT, first + SNIPPET_MAX_LINES - 1)
            if first <= last:
                f = evolve(f, snippet=Snippet(first, tuple(clip(lines[n - 1]) for n in range(first, last + 1))))
        findings.append(f)
    return replace(result, findings=tuple(findings))


# Besides "\n", what str.splitlines() ends a line at: where a text has none of them, a
# line of splitlines() is a line of TextLines, and no list of every line is needed.
_OTHER_LINE_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


class FileLines:
    """The lines of one loaded text as ``str.splitlines()`` cuts them, found on demand."""

    def __init__(self, text: str, lines: TextLines | None = None) -> None:
        if any(c in text for c in _OTHER_LINE_BREAKS):
            self._split: list[str] | None = text.splitlines()
            self.count = len(self._split)
        else:
            self._split = None
            self._lines = lines if lines is not None and lines.text is text else TextLines(text)
            self.count = text.count("\n") + (0 if not text or text.endswith("\n") else 1)

    def line(self, number: int) -> str:
        return self._split[number - 1] if self._split is not None else self._lines.line(number)

    def snippet(self, span: Span) -> Snippet | None:
        """The lines around ``span`` (SNIPPET_CONTEXT above and below, at most SNIPPET_MAX_LINES)."""
        if not self.count:
            return None
        first = max(1, span.start_line - SNIPPET_CONTEXT)
        last = min(self.count, span.end_line + SNIPPET_CONTEXT, first + SNIPPET_MAX_LINES - 1)
        if first > last:
            return None
        if self._split is not None:
            return Snippet(first, tuple(clip(line) for line in self._split[first - 1 : last]))
        # The block of lines at once: one lookup of its first line, then plain newlines.
        text = self._lines.text
        start = self._lines.line_start(first)
        if start is None:
            return None
        lines = []
        for _ in range(last - first + 1):
            end = text.find("\n", start)
            if end < 0:
                lines.append(clip(text[start:]))
                break
            lines.append(clip(text[start:end]))
            start = end + 1
        return Snippet(first, tuple(lines))


class SnippetMaker:
    """Attaches snippets to a file's findings while the scan still holds its text.

    A finding located in another file its target's source map names (rare) is read
    through the bounded reader, once per file.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._others: dict[str, FileLines | None] = {}

    def attach(self, findings: list[Finding], file: str, text: str, lines: TextLines | None = None) -> list[Finding]:
        here: FileLines | None = None
        out = []
        for f in findings:
            loc = f.location
            if loc.span is not None and loc.file is not None:
                if loc.file == file:
                    if here is None:
                        here = FileLines(text, lines)
                    source = here
                else:
                    source = self._other(loc.file)
                snippet = source.snippet(loc.span) if source is not None else None
                if snippet is not None:
                    f = evolve(f, snippet=snippet)
            out.append(f)
        return out

    def _other(self, file: str) -> FileLines | None:
        if file not in self._others:
            text, problem = read_text(Path(file), self.max_bytes)
            self._others[file] = FileLines(text) if problem is None and text is not None else None
        return self._others[file]


def snippet_lines(finding: Finding) -> list[dict]:
    """The snippet as rows for a report: number, text, and whether it is the finding's line."""
    snippet, span = finding.snippet, finding.location.span
    if snippet is None:
        return []
    return [
        {
            "number": snippet.first_line + i,
            "text": text,
            "hit": span is not None and span.start_line <= snippet.first_line + i <= span.end_line,
        }
        for i, text in enumerate(snippet.lines)
    ]
