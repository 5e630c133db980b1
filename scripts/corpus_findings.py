"""Every finding ib-audit reports on the shared corpus, in tests/corpus_findings.txt's format.

The corpus (../shared/corpus: real public configurations) is the precision test: each
finding it yields is listed in tests/corpus_findings.txt with a verdict and a one-line
reason, and tests/test_corpus_precision.py fails on a finding not listed, on a listed
finding that disappeared, and on any verdict other than true-positive.

Run:
  python scripts/corpus_findings.py            # print the current findings; listed
                                               # ones keep their verdict and reason
  python scripts/corpus_findings.py --write    # the same, into tests/corpus_findings.txt
  python scripts/corpus_findings.py --check    # exit 1 and say what differs

New findings print as "unreviewed" with the finding's message as the reason: review
them, then replace the verdict and reason. The scan runs with an empty config, so a
configuration file in the working directory changes nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

from auditor.cli import main as ib_audit

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"
EXPECTATIONS = REPO / "tests" / "corpus_findings.txt"
ACCEPTED = "true-positive"
HEADER = """\
# Every finding ib-audit reports on ../shared/corpus, with a verdict and why.
# rule | file:line (relative to the corpus) | canonical path | verdict | reason
# Verdicts: true-positive (the only one tests/test_corpus_precision.py accepts),
# false-positive, doubtful, unreviewed. Regenerate with scripts/corpus_findings.py.
"""


def key_of(line: str) -> tuple[str, str, str]:
    """``(rule, file:line, path)``: what identifies a finding in the file."""
    rule, where, path, *_ = (part.strip() for part in line.split(" | "))
    return rule, where, path


def read_expectations(path: Path = EXPECTATIONS) -> list[str]:
    if not path.exists():
        return []
    return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]


def current_findings() -> list[tuple[tuple[str, str, str], str]]:
    """``(key, message)`` of every finding a default scan of the corpus reports."""
    with tempfile.TemporaryDirectory() as tmp:
        config, report = Path(tmp, "empty.toml"), Path(tmp, "report.json")
        config.write_text("")
        args = ["scan", str(CORPUS), "--config", str(config), "-f", f"json={report}", "--fail-on", "never", "-q"]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ib_audit(args)
        findings = json.loads(report.read_text(encoding="utf-8"))["findings"]
    out = []
    for f in findings:
        file = Path(f["location"]["file"]).resolve().relative_to(CORPUS.resolve()).as_posix()
        out.append(((f["rule_id"], f"{file}:{f['location'].get('start_line')}", f["path"]), f["message"]))
    return sorted(out, key=lambda item: (item[0][1].rsplit(":", 1)[0], int(item[0][1].rsplit(":", 1)[1]), item[0]))


def render(findings, expected: list[str]) -> str:
    """The file's text for these findings, keeping the verdicts already written."""
    reviewed: dict[tuple[str, str, str], list[str]] = {}
    for line in expected:
        reviewed.setdefault(key_of(line), []).append(line)
    lines = []
    for key, message in findings:
        kept = reviewed.get(key)
        lines.append(kept.pop(0) if kept else " | ".join((*key, "unreviewed", message)))
    return HEADER + "\n".join(lines) + "\n"


def check(findings, expected: list[str]) -> list[str]:
    """What differs from the expectations: each problem as one line."""
    now = Counter(key for key, _ in findings)
    listed = Counter(key_of(line) for line in expected)
    problems = [f"not in the expectations: {' | '.join(k)}" for k in sorted((now - listed).elements())]
    problems += [f"listed but no longer reported: {' | '.join(k)}" for k in sorted((listed - now).elements())]
    for line in expected:
        verdict = line.split(" | ")[3].strip()
        if verdict != ACCEPTED:
            problems.append(f"verdict {verdict!r}, not {ACCEPTED!r}: {line}")
    return problems


def main(argv: list[str]) -> int:
    if not CORPUS.is_dir():
        print(f"corpus not found at {CORPUS}", file=sys.stderr)
        return 2
    findings, expected = current_findings(), read_expectations()
    if "--check" in argv:
        problems = check(findings, expected)
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    text = render(findings, expected)
    if "--write" in argv:
        EXPECTATIONS.write_text(text, encoding="utf-8")
        print(f"wrote {EXPECTATIONS}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
