"""GitHub Actions workflow commands: an annotation per finding, without code scanning.

``::error file=F,line=L,endLine=L,col=C,title=T::message``, one line per unsuppressed
finding, so findings appear on the pull request's diff even on private repositories
without GitHub Advanced Security. Levels follow severity (critical and high are
``error``, medium ``warning``, low and info ``notice``). Inputs that could not be read are
``error`` annotations; warnings about suppressions are ``warning`` annotations on the
suppression's line.

Escaping is the runner's (the "Workflow commands for GitHub Actions" page and the
toolkit's ``command.ts``): in the message ``%``, CR and LF become ``%25``, ``%0D``,
``%0A``; in properties ``:`` and ``,`` also become ``%3A`` and ``%2C``, so no value from
a configuration can end a command early or start a new one. GitHub shows at most 10
annotations of each level per step (50 per job); the log lists every one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from auditor.model import AuditResult, Location, Severity

LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "notice",
    Severity.INFO: "notice",
}


def escape_data(text: str) -> str:
    """A workflow command's message: ``%``, CR and LF escaped."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: as a message, plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _file(path: str) -> str:
    """Paths relative to the repository root, which is what annotations are placed by."""
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if workspace and Path(path).is_absolute():
        try:
            return Path(path).relative_to(workspace).as_posix()
        except ValueError:
            pass
    return Path(path).as_posix()


def command(level: str, message: str, location: Location | None = None, title: str | None = None) -> str:
    """One workflow command line (without the newline)."""
    props: list[tuple[str, str]] = []
    if location is not None and location.file:
        props.append(("file", _file(location.file)))
        span = location.span
        if span is not None:
            props += [("line", str(span.start_line)), ("endLine", str(span.end_line)), ("col", str(span.start_column))]
            if span.end_line == span.start_line:
                props.append(("endColumn", str(span.end_column)))
    if title:
        props.append(("title", title))
    head = ",".join(f"{key}={escape_property(value)}" for key, value in props)
    return f"::{level}{' ' + head if head else ''}::{escape_data(message)}"


def lines(result: AuditResult) -> list[str]:
    names = {t.id: t.name for t in result.targets}
    files = {t.id: t.origin.file for t in result.targets}
    out = []
    for f in result.findings:
        if f.suppressed is not None:
            continue
        where = "" if f.location.file else f" ({f.location.arn or f.target})"
        message = f"{f.message} (configuration {names.get(f.target, f.target)}){where}"
        title = f"{f.rule_id} {f.rule} [{f.severity.label}]"
        out.append(command(LEVELS[f.severity], message, f.location, title))
    for e in result.errors:
        file = files.get(e.input)
        where = Location(file=file) if file else None
        out.append(command("error", e.display(), where, "ib-audit could not audit an input"))
    for w in result.warnings:
        out.append(command("warning", w.message, w.location, "ib-audit warning"))
    counts = result.counts()
    total = sum(counts.values())
    if result.errors:
        verdict = "incomplete: some inputs could not be audited"
    elif result.failed:
        verdict = f"failed: findings at or above {result.fail_on.label}"  # type: ignore[union-attr]
    else:
        verdict = "passed"
    out.append(f"ib-audit: {total} finding(s), {result.suppressed_count} suppressed; {verdict}")
    return out


def write(result: AuditResult, stream: TextIO) -> None:
    for line in lines(result):
        stream.write(line + "\n")
