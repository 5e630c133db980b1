"""The conventions of the tools users already run: ruff's rule selection, exclude globs,
usage errors before scanning, colour variables, JUnit's gate, boto3 as a dependency."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from auditor.cli import main, use_color
from auditor.globs import PathGlob

from conftest import EXAMPLES, REPO

ALL = [f"IBD{n:03}" for n in range(1, 18) if n != 14]  # IBD014 is retired: never runs
COMPLIANT = str(EXAMPLES / "compliant-baseline.json")
PUBLIC = str(EXAMPLES / "public-ami.json")


def _ran(tmp_path: Path, config: str, *flags: str) -> list[str]:
    (tmp_path / "policy.toml").write_text(config)
    out = tmp_path / "r.json"
    code = main(["scan", COMPLIANT, "--config", str(tmp_path / "policy.toml"), "-f", f"json={out}", *flags])
    assert code == 0, code
    return [r["id"] for r in json.loads(out.read_text())["rules"]]


def _but(*ids: str) -> list[str]:
    return [r for r in ALL if r not in ids]


@pytest.mark.parametrize(
    ("config", "flags", "expected"),
    [
        # --ignore adds to the config's ignore instead of replacing it.
        ('ignore = ["IBD010"]', ["--ignore", "IBD009"], _but("IBD009", "IBD010")),
        ('ignore = ["IBD010"]', ["--extend-ignore", "IBD009"], _but("IBD009", "IBD010")),
        ('extend-ignore = ["IBD01"]', ["--ignore", "IBD009"], [f"IBD00{n}" for n in range(1, 9)]),
        # --select replaces the config's selection (and, as in ruff, its ignores).
        ('select = ["IBD001"]', ["--select", "IBD002"], ["IBD002"]),
        ('ignore = ["IBD002"]', ["--select", "IBD00"], [f"IBD00{n}" for n in range(1, 10)]),
        # --extend-select adds to it.
        ('select = ["IBD00"]', ["--extend-select", "IBD016"], [*(f"IBD00{n}" for n in range(1, 10)), "IBD016"]),
        ('extend-select = ["IBD016"]\nselect = ["IBD001"]', [], ["IBD001", "IBD016"]),
        # Within a layer the more specific selector wins; at equal specificity ignore does.
        ("", ["--select", "ALL", "--ignore", "IBD00"], [r for r in ALL if r >= "IBD010"]),
        ("", ["--ignore", "ALL", "--select", "IBD002"], ["IBD002"]),
        ('select = ["IBD002"]\nignore = ["IBD0"]', [], ["IBD002"]),
        ('select = ["IBD002"]\nignore = ["IBD002"]', [], []),
        # Slugs are exact selectors; a rule's enabled = true overrides select, not ignore.
        ('select = ["ami-public-launch-permission"]\n[rules.IBD010]\nenabled = true', [], ["IBD002", "IBD010"]),
        ("[rules.IBD010]\nenabled = true", ["--select", "IBD002", "--ignore", "IBD010"], ["IBD002"]),
        ("[rules.IBD010]\nenabled = false", ["--extend-select", "IBD010"], _but("IBD010")),
    ],
)
def test_rule_selection_combines_file_and_command_line_like_ruff(tmp_path, capsys, config, flags, expected):
    assert _ran(tmp_path, config, *flags) == expected
    capsys.readouterr()


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("fixtures", "a/fixtures/x.json", True),
        ("fixtures", "a/fixtures", True),
        ("fixtures", "a/fixtures-old/x.json", False),
        ("*.draft.json", "a/b/c.draft.json", True),
        ("*.draft.json", "a/b/c.json", False),
        ("legacy/*.json", "legacy/x.json", True),
        ("legacy/*.json", "legacy/sub/x.json", False),
        ("legacy/*.json", "app/legacy/x.json", False),
        ("legacy/**/*.json", "legacy/sub/x.json", True),
        ("**/test/*.tf", "a/b/test/main.tf", True),
        ("/stacks/", "stacks/x.yaml", True),
        ("stacks/", "other/stacks/x.yaml", True),
        ("[ab].json", "a.json", True),
        ("[!ab].json", "a.json", False),
        ("?.json", "ab.json", False),
    ],
)
def test_path_globs(pattern, path, matches):
    assert PathGlob(pattern).matches(path) is matches


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A repository with configurations where teams keep them and where they don't."""
    for rel in ("infra/a.json", "infra/fixtures/bad.json", "legacy/old.json", "node_modules/pkg/x.json"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PUBLIC, path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _files(capsys, *args) -> list[str]:
    main(["scan", *args, "-f", "json=r.json", "--fail-on", "never"])
    capsys.readouterr()
    return sorted(t["id"] for t in json.loads(Path("r.json").read_text())["targets"])


def test_exclude_and_extend_exclude(tree, capsys):
    assert _files(capsys, ".") == ["infra/a.json", "infra/fixtures/bad.json", "legacy/old.json"]
    (tree / ".ib-audit.toml").write_text('extend-exclude = ["fixtures", "/legacy/*.json"]\n')
    assert _files(capsys, ".") == ["infra/a.json"]
    # exclude replaces the defaults: node_modules is walked again.
    (tree / ".ib-audit.toml").write_text('exclude = ["fixtures"]\n')
    assert _files(capsys, ".") == ["infra/a.json", "legacy/old.json", "node_modules/pkg/x.json"]
    # A file named on the command line is scanned unless --force-exclude (pre-commit lists files).
    assert _files(capsys, "infra/fixtures/bad.json") == ["infra/fixtures/bad.json"]
    assert _files(capsys, "infra/fixtures/bad.json", "infra/a.json", "--force-exclude") == ["infra/a.json"]


def test_per_path_ignores(tree, capsys):
    (tree / ".ib-audit.toml").write_text('[per-path-ignores]\n"fixtures" = ["ALL"]\n"legacy/*.json" = ["IBD009"]\n')
    main(["scan", ".", "-f", "json=r.json"])
    capsys.readouterr()
    report = json.loads(Path("r.json").read_text())
    config = str(tree / ".ib-audit.toml")
    assert [(f["target"], f["rule_id"], f["suppressed"]) for f in report["findings"]] == [
        ("infra/a.json", "IBD009", None),
        ("infra/a.json", "IBD002", None),
        (
            "infra/fixtures/bad.json",
            "IBD009",
            {"kind": "config", "reason": f'per-path-ignores "fixtures" in {config}'},
        ),
        (
            "infra/fixtures/bad.json",
            "IBD002",
            {"kind": "config", "reason": f'per-path-ignores "fixtures" in {config}'},
        ),
        ("legacy/old.json", "IBD009", {"kind": "config", "reason": f'per-path-ignores "legacy/*.json" in {config}'}),
        ("legacy/old.json", "IBD002", None),
    ]


def test_bad_globs_and_selectors_in_config_are_errors(tree, capsys):
    (tree / ".ib-audit.toml").write_text('exclude = ""\n[per-path-ignores]\n"x/" = ["IBD999"]\n')
    assert main(["scan", "."]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"ib-audit: error: {tree / '.ib-audit.toml'}: exclude: expected a list of path globs, got ''",
        f"ib-audit: error: {tree / '.ib-audit.toml'}: per-path-ignores.\"x/\": unknown rule id or prefix 'IBD999'",
    ]


# -- usage errors stop before scanning -----------------------------------------------------------
# -P: the working directory (often the source tree) must not shadow the installed package.
CLI = [sys.executable, "-P", "-m", "auditor"]


def _cli(*args: str, env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env)


def _no_aws_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    return env


def test_a_live_scan_without_a_region_is_a_usage_error(tmp_path):
    env = _no_aws_env(tmp_path)
    proc = _cli("scan", "--aws", "-f", f"json={tmp_path / 'r.json'}", env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (
        "ib-audit: error: the live scan needs a region: pass --region R (repeatable, or 'all'), or set AWS_REGION\n"
    )
    assert not (tmp_path / "r.json").exists()
    proc = _cli("scan", "--aws", "--profile", "nobody", env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("ib-audit: error: cannot set up the AWS session: ") and "nobody" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_a_shard_without_a_live_scan_is_a_usage_error(tmp_path):
    proc = _cli("scan", PUBLIC, "--shard", "1/2")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == "ib-audit: error: --shard needs --aws or --accounts/--accounts-file/--organization\n"


def test_a_report_that_cannot_be_written_is_a_usage_error(tmp_path):
    proc = _cli("scan", PUBLIC, "-f", f"sarif={tmp_path / 'missing' / 'x.sarif'}")
    assert proc.returncode == 2
    assert proc.stderr == (
        f"ib-audit: error: -f sarif={tmp_path / 'missing' / 'x.sarif'}: directory {tmp_path / 'missing'} does not exist\n"
    )
    assert proc.stdout == ""


def test_boto3_is_a_dependency_and_its_absence_is_one_line(tmp_path):
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("boto3") for d in deps)
    # A broken environment without boto3: a usage error naming it, not "internal error".
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['boto3'] = None\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "IB_AUDIT_DEBUG": "0"}
    proc = _cli("scan", "--aws", "--region", "us-east-1", env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("ib-audit: error: the live scan needs boto3, which cannot be imported (")
    assert proc.stderr.endswith("; pip install boto3\n") and proc.stderr.count("\n") == 1


# -- colour ------------------------------------------------------------------------------------------
class _Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize(
    ("choice", "env", "tty", "expected"),
    [
        ("auto", {}, True, True),
        ("auto", {}, False, False),
        ("auto", {"NO_COLOR": "1"}, True, False),
        ("auto", {"NO_COLOR": ""}, True, True),  # set but empty: no-color.org says ignore it
        ("auto", {"FORCE_COLOR": "1"}, False, True),
        ("auto", {"FORCE_COLOR": "0"}, False, False),
        ("auto", {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False, False),
        ("auto", {"TERM": "dumb"}, True, False),
        ("auto", {"TERM": "dumb", "FORCE_COLOR": "1"}, True, True),
        ("always", {"NO_COLOR": "1", "TERM": "dumb"}, False, True),
        ("never", {"FORCE_COLOR": "1"}, True, False),
    ],
)
def test_use_color(choice, env, tty, expected):
    assert use_color(choice, _Tty() if tty else io.StringIO(), env) is expected


def test_colour_on_the_command_line():
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    assert "\x1b[" in _cli("scan", PUBLIC, env={**base, "FORCE_COLOR": "1"}).stdout
    assert "\x1b[" not in _cli("scan", PUBLIC, env={**base, "FORCE_COLOR": "1", "NO_COLOR": "1"}).stdout
    assert "\x1b[" in _cli("scan", PUBLIC, "--color", "always", env={**base, "NO_COLOR": "1"}).stdout
    assert "\x1b[" not in _cli("scan", PUBLIC, "--color", "never", env={**base, "FORCE_COLOR": "1"}).stdout
    # Reports written to files never carry escape codes.
    proc = _cli("scan", PUBLIC, "--color", "always", "-f", "text=/dev/stdout")
    assert "\x1b[" not in proc.stdout


# -- JUnit marks failures at the gate -----------------------------------------------------------------
def test_junit_failures_only_at_or_above_fail_on(tmp_path, capsys):
    from junitparser import Failure, JUnitXml, Skipped

    out = tmp_path / "out.xml"
    assert main(["scan", PUBLIC, "--fail-on", "critical", "-f", f"junit={out}"]) == 1
    capsys.readouterr()
    cases = {case.name.split()[0]: case for suite in JUnitXml.fromfile(str(out)) for case in suite}
    failed = sorted(name for name, case in cases.items() if any(isinstance(r, Failure) for r in case.result))
    assert failed == ["IBD002"]  # critical; IBD009 (medium) is below the gate
    assert not any(isinstance(r, (Failure, Skipped)) for r in cases["IBD009"].result)
    assert cases["IBD009"].system_out.startswith("below --fail-on critical:\n")
    assert "public-ami.json:10:19: IBD009 [medium]" in cases["IBD009"].system_out
    assert main(["scan", PUBLIC, "--fail-on", "never", "-f", f"junit={out}"]) == 0
    capsys.readouterr()
    xml = JUnitXml.fromfile(str(out))
    assert sum(1 for suite in xml for case in suite if any(isinstance(r, Failure) for r in case.result)) == 0


def test_write_baseline_exits_zero_once_written_but_not_when_incomplete(tmp_path, capsys):
    assert main(["scan", PUBLIC, "--write-baseline", str(tmp_path / "b.json")]) == 0
    assert "ib-audit: wrote 2 finding(s) to" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("{")
    assert main(["scan", PUBLIC, str(tmp_path / "broken.json"), "--write-baseline", str(tmp_path / "b.json")]) == 2
