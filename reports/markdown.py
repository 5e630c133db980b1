"""Markdown summary for $GITHUB_STEP_SUMMARY and merge-request comments.

A verdict, a count table, the errors, and the most severe findings; capped so the
summary stays far below GitHub's 1 MiB step-summary limit whatever the scan size.
"""

from __future__ import annotations

from typing import TextIO

from auditor.model import AuditResult
from auditor.reporting import log_safe

TOP = 50
MAX_CELL = 300


# Backslash first (it escapes the rest), then what would start a link, an image, a code
# span, emphasis or a table cell; & before < and > so that entities stay literal text.
_MARKDOWN_ESCAPES = (
    ("\\", "\\\\"),
    ("&", "&amp;"),
    ("|", "\\|"),
    ("<", "&lt;"),
    (">", "&gt;"),
    ("`", "\\`"),
    ("*", "\\*"),
    ("_", "\\_"),
    ("[", "\\["),
    ("]", "\\]"),
    ("(", "\\("),
    (")", "\\)"),
    ("!", "\\!"),
)


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell or list item: no pipes, newlines, links,
    images, code spans, HTML, control characters or runaway length."""
    text = log_safe(" ".join(str(text).split()))
    if len(text) > MAX_CELL:
        text = text[: MAX_CELL - 1] + "\u2026"
    for char, escaped in _MARKDOWN_ESCAPES:
        text = text.replace(char, escaped)
    return text


def render(result: AuditResult) -> str:
    counts = result.counts()
    if result.errors:
        verdict = "⚠️ **Incomplete**: some inputs could not be audited"
    elif result.failed:
        verdict = f"❌ **Failed**: findings at or above `{result.fail_on.label}`"  # type: ignore[union-attr]
    else:
        gate = "off" if result.fail_on is None else f"fail-on `{result.fail_on.label}`"
        verdict = f"✅ **Passed** ({gate})"
    audited = sum(1 for t in result.targets if t.status == "audited")
    out = [
        "## ib-audit",
        "",
        verdict,
        "",
        f"{audited} of {len(result.targets)} configuration input(s) audited"
        + (f" from {cell(', '.join(result.scanned))}" if result.scanned else "")
        + ".",
        "",
        "| critical | high | medium | low | info | suppressed | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        "| "
        + " | ".join(str(counts[s]) for s in ("critical", "high", "medium", "low", "info"))
        + f" | {result.suppressed_count} | {len(result.errors)} |",
    ]
    if result.errors:
        out += ["", "### Errors", ""]
        # No code span around data: a backtick in it would end the span and let what follows be Markdown.
        out += [f"- {cell(e.input)}: {cell(e.message)}" for e in result.errors[:TOP]]
        if len(result.errors) > TOP:
            out.append(f"- …and {len(result.errors) - TOP} more")
    if result.fixed:
        out += ["", f"{len(result.fixed)} baseline finding(s) fixed."]
    active = sorted((f for f in result.findings if f.suppressed is None), key=lambda f: (-f.severity, f.sort_key()))
    if active:
        names = {t.id: t.name for t in result.targets}
        out += ["", "### Top findings" if len(active) > TOP else "### Findings", ""]
        out += ["| Severity | Rule | Configuration | Location | Message |", "|---|---|---|---|---|"]
        for f in active[:TOP]:
            out.append(
                f"| {f.severity.label} | {cell(f.rule_id)} {cell(f.rule)} | {cell(names.get(f.target, f.target))} "
                f"| {cell(f.location.display())} | {cell(f.message)} |"
            )
        if len(active) > TOP:
            out += ["", f"…and {len(active) - TOP} more; see the SARIF, HTML or JSON report for all of them."]
    return "\n".join(out) + "\n"


def write(result: AuditResult, stream: TextIO) -> None:
    stream.write(render(result))
