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

from auditor.model import AuditResult, Finding, Snippet
from auditor.sources import read_text

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
                f = replace(f, snippet=Snippet(first, tuple(clip(lines[n - 1]) for n in range(first, last + 1))))
        findings.append(f)
    return replace(result, findings=tuple(findings))


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
