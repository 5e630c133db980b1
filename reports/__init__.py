"""The built-in report formats, registered like any third-party reporter."""

from __future__ import annotations

from auditor.hookspecs import hookimpl

from .json_report import JSONReporter
from .text import TextReporter


class SARIFReporter:
    """Imports sarif-om only when a SARIF report is asked for (import time matters)."""

    name = "sarif"
    description = "SARIF 2.1.0 for GitHub code scanning and other SARIF viewers"

    def write(self, result, stream, *, color: bool = False) -> None:
        from . import sarif

        sarif.write(result, stream)


class HTMLReporter:
    """Imports Jinja2 only when an HTML report is asked for."""

    name = "html"
    description = "one self-contained HTML page for people, filterable, readable without JavaScript"

    def write(self, result, stream, *, color: bool = False) -> None:
        from . import html

        html.write(result, stream)


class JUnitReporter:
    name = "junit"
    description = "JUnit XML: a test case per configuration and rule, for CI test views"

    def write(self, result, stream, *, color: bool = False) -> None:
        from . import junit

        junit.write(result, stream)


class MarkdownReporter:
    name = "markdown"
    description = "a compact Markdown summary for $GITHUB_STEP_SUMMARY and merge-request comments"

    def write(self, result, stream, *, color: bool = False) -> None:
        from . import markdown

        markdown.write(result, stream)


@hookimpl
def auditor_add_reporters():
    return [TextReporter(), JSONReporter(), SARIFReporter(), HTMLReporter(), JUnitReporter(), MarkdownReporter()]
