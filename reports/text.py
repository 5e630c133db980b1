"""Text report: one line per finding, sorted by file, line and column, then a summary.

Suppressed and baselined findings are counted but not listed unless the report option
``show_suppressed`` (``--show-suppressed``) is set: the JSON and SARIF reports keep them.

Every value that comes from the data (file names, ARNs, messages, reasons) is shown
through ``log_safe`` and every line through ``log_line``, so that a configuration or a
file name can neither inject terminal escape sequences nor start a CI workflow command.
"""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from auditor.model import AuditResult, Severity
from auditor.reporting import log_line, log_safe, unverified_groups

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
UNVERIFIED_SHOWN = 5  # configurations listed under one could-not-verify cause; the JSON report has all


class TextReporter:
    name = "text"
    description = "one line per finding and a summary, for terminals and CI logs"
    needs_configs = False  # works from findings alone

    def write(self, result: AuditResult, stream: TextIO, *, color: bool = False) -> None:
        def paint(text: str, code: str) -> str:
            return f"{code}{text}{_RESET}" if color else text

        def put(line: str) -> None:
            stream.write(log_line(line) + "\n")

        esc = log_safe
        names = {t.id: t.name for t in result.targets}
        show_suppressed = bool(result.report_options.get("show_suppressed"))
        for f in result.findings:
            if f.suppressed is not None and not show_suppressed:
                continue
            sev = paint(f"[{f.severity.label}]", _COLORS[f.severity])
            line = f"{esc(f.location.display())}: {paint(esc(f.rule_id), _BOLD)} {sev} {esc(f.message)}"
            if f.location.file and f.target != f.location.file:
                line += f" ({esc(names.get(f.target, f.target))})"
            if f.suppressed is not None:
                line = paint(f"{line} [suppressed: {esc(f.suppressed.reason)}]", _DIM)
            put(line)
        for e in result.errors:
            put(f"{paint('error', _COLORS[Severity.HIGH])}: {esc(e.display())}")
        if result.unverified:
            configurations = len({u.target for u in result.unverified})
            stream.write(
                f"\nCould not verify {len(result.unverified)} check(s) in {configurations} configuration(s) "
                "(unresolved values, unknown facts):\n"
            )
            for group in unverified_groups(result.unverified):
                if len(group.entries) == 1:
                    (u,) = group.entries
                    put(f"  {esc(u.target)}: {esc(u.rule_id)} {esc(u.path)}: {esc(u.reason)}")
                    continue
                # One cause in front of many configurations: said once, with the first few of them.
                where = f"in {group.configurations} configuration(s)"
                if len(group.entries) > group.configurations:
                    where = f"at {len(group.entries)} places {where}"
                put(f"  {esc(group.rule_id)} {where}: {esc(group.reason)}")
                for u in group.entries[:UNVERIFIED_SHOWN]:
                    put(f"    {esc(u.target)} {esc(u.path)}")
                if len(group.entries) > UNVERIFIED_SHOWN:
                    put(f"    and {len(group.entries) - UNVERIFIED_SHOWN} more (the JSON report lists each)")

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
                put(f"  {esc(e.get('target'))}: {esc(e.get('rule_id'))} {esc(e.get('path'))}")
        by_rule = Counter((f.rule_id, f.rule) for f in result.findings if f.suppressed is None)
        for (rule_id, slug), n in sorted(by_rule.items()):
            put(f"  {esc(rule_id)} {esc(slug)}: {n}")
        if result.errors:
            verdict = "incomplete: some inputs could not be audited (exit 2)"
        elif result.failed:
            assert result.fail_on is not None
            verdict = f"failed: findings at or above {result.fail_on.label} (exit 1)"
        else:
            gate = "off" if result.fail_on is None else f"fail-on {result.fail_on.label}"
            verdict = f"passed ({gate})"
        stream.write(f"Result: {verdict}\n")
