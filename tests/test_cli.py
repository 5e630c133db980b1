"""The installed command: console script, python -m, help, and what the offline path imports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from auditor import __version__

from conftest import EXAMPLES, REPO

# The console script installed next to this interpreter (the venv under test).
_local = Path(sys.executable).with_name("ib-audit")
EXE = str(_local) if _local.exists() else shutil.which("ib-audit")


def _run(*args, **kw):
    return subprocess.run(args, capture_output=True, text=True, cwd=REPO, **kw)


def test_console_script_and_module_entry_point():
    assert EXE, "ib-audit console script not installed"
    assert _run(EXE, "--version").stdout.strip() == f"ib-audit {__version__}"
    # Not from the repo root: there "-m" would import the source tree, not the install.
    proc = subprocess.run(
        [sys.executable, "-P", "-m", "auditor", "scan", str(EXAMPLES / "compliant-baseline.json")],
        capture_output=True,
        text=True,
        cwd=EXAMPLES,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_offline_scan_never_imports_boto3_or_botocore():
    code = (
        "import sys\n"
        "from auditor.cli import main\n"
        f"rc = main(['scan', {str(EXAMPLES)!r}, '-f', 'json=/dev/null'])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'jinja2'))\n"
        "print(bad)\n"
        # What only the account context (threads, policy evaluation) or a parallel scan needs.
        "print(sorted(m for m in ('auditor.context', 'concurrent.futures', 'multiprocessing') if m in sys.modules))\n"
    )
    # -P: from the repository root, "-c" would import the source tree, whose rules and
    # reporters only exist as packages once installed, and prove nothing.
    proc = _run(sys.executable, "-P", "-c", code)
    assert proc.stdout.split("\n")[:2] == ["[]", "[]"], proc.stdout + proc.stderr
    assert proc.stderr == "", proc.stderr  # every plugin loaded: the scan really ran the rules


def test_tests_run_against_the_installed_package():
    import auditor
    import auditor.reports
    import auditor.rules

    # auditor.rules and auditor.reports only exist through the pyproject mapping.
    assert auditor.rules.__file__ and auditor.reports.__file__
    if os.environ.get("IB_AUDIT_REQUIRE_INSTALLED") == "1":  # set by .ci/run
        for module in (auditor, auditor.rules, auditor.reports):
            assert "site-packages" in module.__file__, module.__file__


def test_explain_and_unknown_rule(capsys):
    from auditor.cli import main

    assert main(["explain", "unknown-member"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("IBD016 unknown-member (default severity: medium)")
    assert "Why:" in out and "Example:" in out and "Fix:" in out
    assert main(["explain", "IBD404"]) == 2
    assert "unknown rule 'IBD404'" in capsys.readouterr().err


def test_text_report_has_no_colour_when_not_a_tty():
    proc = _run(EXE, "scan", str(EXAMPLES / "public-ami.json"))
    assert "\x1b[" not in proc.stdout
    assert proc.returncode == 1
    # Sorted by line: the name on line 10 before the launch permission on line 13.
    assert [line.split(": ", 1)[0].rsplit("/", 1)[-1] for line in proc.stdout.splitlines()[:2]] == [
        "public-ami.json:10:19",
        "public-ami.json:13:47",
    ]
    assert proc.stdout.splitlines()[1].endswith(
        "public-ami.json:13:47: IBD002 [critical] AMI distributed to us-east-1 is public "
        "(userGroups contains 'all'); remove it"
    )


def test_only_one_report_to_stdout():
    proc = _run(EXE, "scan", str(EXAMPLES), "-f", "text", "-f", "json")
    assert proc.returncode == 2
    assert (
        proc.stderr.strip() == "ib-audit: error: only one report can go to stdout; give the others a file: -f NAME=FILE"
    )


def test_a_scan_leaves_the_cycle_collector_as_it_found_it(capsys):
    """A scan freezes start-up's objects and collects less often; a program calling
    ``main`` repeatedly (a test suite, a long-lived service) gets its collector back, or
    everything each scan left would be frozen out of collection for good."""
    import gc

    from auditor.cli import main

    before = gc.get_threshold(), gc.get_freeze_count()
    assert main(["scan", str(EXAMPLES / "compliant-baseline.json"), "-q"]) == 0
    capsys.readouterr()
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
