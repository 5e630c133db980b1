"""The built-in report formats, registered like any third-party reporter."""

from __future__ import annotations

from auditor.hookspecs import hookimpl

from .json_report import JSONReporter
from .text import TextReporter


@hookimpl
def auditor_add_reporters():
    return [TextReporter(), JSONReporter()]
