"""Text report: one line per finding, sorted by file, line and column, then a summary.

Suppressed and baselined findings are counted but not listed unless the report option
``show_suppressed`` (``--show-suppressed``) is set: the JSON and SARIF reports keep them.
"""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from auditor.model import AuditResult, Severity

_COLORS = {
    Severity.CRITICAL: "\x1b[1;35m",
    Severity.HIGH: "\x1b[1;31m",
    Severity.MEDIUM: "\x1b[33m",
    Severity.LOW: "\x1b[36m",
    Severity.INFO: "\x1b[2m",
}
_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"


class TextReporter:
    name = "text"
    description = "one line per finding and a summary, for terminals and CI logs"

    def write(self, result: AuditResult, stream: TextIO, *, color: bool = False) -> None:
        def paint(text: str, code: str) -> str:
            return f"{code}{text}{_RESET}" if color else text

        names = {t.id: t.name for t in result.targets}
        show_suppressed = bool(result.report_options.get("show_suppressed"))
        for f in result.findings:
            if f.suppressed is not None and not show_suppressed:
                continue
            sev = paint(f"[{f.severity.label}]", _COLORS[f.severity])
            line = f"{f.location.display()}: {paint(f.rule_id, _BOLD)} {sev} {f.message}"
            if f.location.file and f.target != f.location.file:
                line += f" ({names.get(f.target, f.target)})"
            if f.suppressed is not None:
                line = paint(f"{line} [suppressed: {f.suppressed.reason}]", _DIM)
            stream.write(line + "\n")
        for e in result.errors:
            stream.write(f"{paint('error', _COLORS[Severity.HIGH])}: {e.display()}\n")
        if result.unverified:
            stream.write(f"\nCould not verify {len(result.unverified)} check(s) on unresolved values:\n")
            for u in result.unverified:
                stream.write(f"  {u.target}: {u.rule_id} {u.path}: {u.reason}\n")

        counts = result.counts()
        audited = sum(1 for t in result.targets if t.status == "audited")
        active = sum(counts.values())
        stream.write("\n")
        by_sev = ", ".join(f"{n} {sev}" for sev, n in counts.items() if n)
        stream.write(f"{audited} configuration(s) audited, {active} finding(s)" + (f" ({by_sev})" if by_sev else ""))
        if result.suppressed_count:
            hint = "" if show_suppressed else " (--show-suppressed lists them)"
            stream.write(f", {result.suppressed_count} suppressed{hint}")
        if result.errors:
            stream.write(f", {paint(f'{len(result.errors)} error(s)', _COLORS[Severity.HIGH])}")
        if result.warnings:
            stream.write(f", {len(result.warnings)} warning(s) on stderr")
        stream.write(".\n")
        if result.fixed:
            stream.write(f"{len(result.fixed)} baseline finding(s) fixed:\n")
            for e in result.fixed:
                stream.write(f"  {e.get('target')}: {e.get('rule_id')} {e.get('path')}\n")
        by_rule = Counter((f.rule_id, f.rule) for f in result.findings if f.suppressed is None)
        for (rule_id, slug), n in sorted(by_rule.items()):
            stream.write(f"  {rule_id} {slug}: {n}\n")
        if result.errors:
            verdict = "incomplete: some inputs could not be audited (exit 2)"
        elif result.failed:
            assert result.fail_on is not None
            verdict = f"failed: findings at or above {result.fail_on.label} (exit 1)"
        else:
            gate = "off" if result.fail_on is None else f"fail-on {result.fail_on.label}"
            verdict = f"passed ({gate})"
        stream.write(f"Result: {verdict}\n")
