"""JUnit XML: one test case per configuration x rule, for CI systems' test views.

A case fails when the rule found something unsuppressed at or above ``--fail-on`` in
that configuration (the failure lists those findings with their locations), the same
findings that make the exit code 1; unsuppressed findings below the gate pass, listed in
the case's <system-out>. A configuration that could not be read is one case with an
<error>. Suppressed-only cases pass, marked skipped.

XML 1.0 cannot carry most control characters nor lone surrogates at all (not even as
character references), so every value goes through ``xml_safe``, which shows them as
``\\xNN`` / ``\\uNNNN`` escapes; anything else ElementTree escapes itself.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import TextIO
from xml.etree import ElementTree as ET

from auditor.model import AuditResult, Finding, Severity

_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids (shown as escapes instead)."""
    return _NOT_XML.sub(_escape, text)


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _lines(findings: list[Finding]) -> str:
    return "\n".join(
        f"{f.location.display()}: {f.rule_id} [{f.severity.label}] {f.message} ({f.path})" for f in findings
    )


def _gates(finding: Finding, result: AuditResult) -> bool:
    """Whether the finding is one that fails the run (the rule of ``AuditResult.failed``)."""
    return result.fail_on is not None and finding.severity >= result.fail_on and finding.severity > Severity.INFO


def build(result: AuditResult) -> ET.Element:
    by_case: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in result.findings:
        by_case[(f.target, f.rule_id)].append(f)
    root = ET.Element("testsuites", name="ib-audit")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for target in result.targets:
        suite = ET.SubElement(root, "testsuite", name=target.id)
        counts = dict.fromkeys(totals, 0)
        if target.error is not None:
            case = ET.SubElement(suite, "testcase", classname=target.name, name="load configuration")
            ET.SubElement(case, "error", message=target.error, type="input-error").text = f"{target.id}: {target.error}"
            counts["tests"] += 1
            counts["errors"] += 1
        else:
            for spec in result.rules:
                case = ET.SubElement(suite, "testcase", classname=target.name, name=f"{spec.id} {spec.rule.slug}")
                counts["tests"] += 1
                found = by_case.get((target.id, spec.id), [])
                unsuppressed = [f for f in found if f.suppressed is None]
                active = [f for f in unsuppressed if _gates(f, result)]
                below = [f for f in unsuppressed if not _gates(f, result)]
                if active:
                    worst = max(f.severity for f in active)
                    failure = ET.SubElement(
                        case, "failure", message=f"{len(active)} finding(s): {active[0].message}", type=worst.label
                    )
                    failure.text = _lines(active)
                    counts["failures"] += 1
                elif found and not below:
                    reasons = "; ".join(sorted({f.suppressed.reason for f in found if f.suppressed}))
                    ET.SubElement(case, "skipped", message=f"suppressed: {reasons}")
                    counts["skipped"] += 1
                if below:  # after <failure>: the JUnit schema orders a case's children
                    gate = result.fail_on.label if result.fail_on is not None else "never"
                    ET.SubElement(case, "system-out").text = f"below --fail-on {gate}:\n" + _lines(below)
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    return root


def _sanitise(element: ET.Element) -> None:
    for node in element.iter():
        if node.text:
            node.text = xml_safe(node.text)
        for key, value in node.attrib.items():
            node.attrib[key] = xml_safe(value)


def write(result: AuditResult, stream: TextIO) -> None:
    root = build(result)
    _sanitise(root)
    ET.indent(root)
    stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    stream.write(ET.tostring(root, encoding="unicode"))
    stream.write("\n")
