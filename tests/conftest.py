"""Shared helpers. Tests import the *installed* package (see README: pip install .)."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class _DenyEverything(BaseHTTPRequestHandler):
    """Answers every AWS call with AccessDenied, in JSON and in XML (botocore reads the one
    its protocol speaks), so no test can reach a real AWS endpoint or wait on one."""

    def _deny(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = (
            b"<ErrorResponse><Error><Code>AccessDenied</Code><Message>tests never reach AWS</Message></Error></ErrorResponse>"
            if "json" not in (self.headers.get("Content-Type") or "")
            else b'{"__type": "AccessDeniedException", "message": "tests never reach AWS"}'
        )
        self.send_response(403)
        self.send_header("x-amzn-ErrorType", "AccessDeniedException")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _deny

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session", autouse=True)
def _no_real_aws():
    """Every service without an endpoint of its own in a test goes to a local endpoint that
    denies everything (a test's AWS_ENDPOINT_URL_<SERVICE> or AWS_ENDPOINT_URL still wins).
    Session-wide, so fixtures of any scope may point it elsewhere and restore it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DenyEverything)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
        yield
    server.shutdown()
