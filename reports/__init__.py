"""The built-in report formats, registered like any third-party reporter."""

from __future__ import annotations

import importlib

from auditor.hookspecs import hookimpl

from .json_report import JSONReporter
from .text import TextReporter


class LazyReporter:
    """A report format whose module (and its imports: sarif-om, Jinja2) loads only when used.

    ``needs_configs``: the format reads the audited configurations themselves
    (``Target.config``), so a scan keeps them; the others work from findings alone.
    """

    def __init__(self, name: str, module: str, description: str, *, needs_configs: bool = False) -> None:
        self.name, self.module, self.description = name, module, description
        self.needs_configs = needs_configs

    def check(self) -> None:
        """Import the module now, so a missing optional dependency (``ReportError``) is a
        usage error before the scan, not a failure after it."""
        importlib.import_module(f"{__name__}.{self.module}")

    def write(self, result, stream, *, color: bool = False) -> None:
        importlib.import_module(f"{__name__}.{self.module}").write(result, stream)


@hookimpl
def auditor_add_reporters():
    return [
        TextReporter(),
        JSONReporter(),
        LazyReporter("sarif", "sarif", "SARIF 2.1.0 for GitHub code scanning and other SARIF viewers"),
        LazyReporter(
            "html",
            "html",
            "one self-contained HTML page for people, filterable, readable without JavaScript",
            needs_configs=True,
        ),
        LazyReporter("junit", "junit", "JUnit XML: a test case per configuration and rule, for CI test views"),
        LazyReporter(
            "markdown", "markdown", "a compact Markdown summary for $GITHUB_STEP_SUMMARY and merge-request comments"
        ),
        LazyReporter(
            "asff",
            "asff",
            "AWS Security Finding Format: the findings as Security Hub's BatchImportFindings",
            needs_configs=True,
        ),
        LazyReporter(
            "ocsf",
            "ocsf",
            "OCSF Compliance Finding events, one JSON object per line, for a security data lake",
            needs_configs=True,
        ),
        LazyReporter("github", "github", "GitHub Actions annotations (workflow commands), no code scanning needed"),
        LazyReporter("gitlab", "gitlab", "GitLab Code Quality JSON for the merge-request widget"),
    ]
