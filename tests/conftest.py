"""Shared helpers. Tests import the *installed* package (see README: pip install .)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from auditor.cli import main

# A bug should fail a test with its traceback, not become main()'s one-line exit 2.
os.environ.setdefault("IB_AUDIT_DEBUG", "1")

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CORPUS = REPO.parent / "shared" / "corpus"


def must_not_skip() -> bool:
    """CI sets IB_AUDIT_NO_SKIP=1: a missing browser or tool is then a failure."""
    return os.environ.get("IB_AUDIT_NO_SKIP") == "1"


def skip_or_fail(reason: str) -> None:
    if must_not_skip():
        pytest.fail(f"{reason} (IB_AUDIT_NO_SKIP=1 forbids skipping)")
    pytest.skip(reason)


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based number of the nth line of ``text`` containing ``needle``: expected lines are
    read off the input, never off the tool."""
    hits = [number for number, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth - 1]


class ScanRun:
    def __init__(self, code: int, report: dict, out: str, err: str) -> None:
        self.code, self.report, self.out, self.err = code, report, out, err

    def whole(self) -> list[tuple]:
        """(rule, canonical path, file, line, message) of every finding, in report order."""
        return [(*f, message) for f, message in zip(self.findings(), self.messages(), strict=True)]

    def messages(self) -> list[str]:
        return [f["message"] for f in self.report["findings"]]

    def findings(self) -> list[tuple[str, str, str | None, int | None]]:
        """(rule, canonical path, file, line) of every finding, in report order."""
        return [
            (f["rule_id"], f["path"], f["location"].get("file"), f["location"].get("start_line"))
            for f in self.report["findings"]
        ]


@pytest.fixture
def scan(tmp_path, capsys, monkeypatch):
    """Run ``ib-audit scan`` in-process with a JSON report; return code, report and output."""

    def run(*args: str, cwd: Path | None = None) -> ScanRun:
        monkeypatch.chdir(cwd or REPO)
        report_file = tmp_path / "report.json"
        code = main(["scan", *args, "-f", f"json={report_file}", "-f", "text"])
        captured = capsys.readouterr()
        report = json.loads(report_file.read_text()) if report_file.exists() else {}
        return ScanRun(code, report, captured.out, captured.err)

    return run


@pytest.fixture
def owner_policy(tmp_path) -> str:
    """A config that names the owner account and an owner region no test distributes to,
    so IBD001 judges every distribution as a copy to another region (its key applies)."""
    path = tmp_path / "owner.toml"
    path.write_text('owner-account = "111122223333"\nowner-region = "eu-central-1"\n')
    return str(path)
