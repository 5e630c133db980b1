"""Configuration discovery, select/ignore, severity and options overrides."""

from __future__ import annotations

import shutil

import pytest

from conftest import EXAMPLES

PUBLIC = str(EXAMPLES / "public-ami.json")


def _rules(run):
    return sorted({f[0] for f in run.findings()})


@pytest.fixture
def project(tmp_path):
    """A repository with the public-AMI example two directories down."""
    file = tmp_path / "a" / "b" / "public-ami.json"
    file.parent.mkdir(parents=True)
    shutil.copy(PUBLIC, file)
    return tmp_path


def test_dot_ib_audit_toml_is_found_upwards_from_the_scanned_paths(scan, project, tmp_path):
    (project / ".ib-audit.toml").write_text('ignore = ["IBD009"]\n[rules.IBD002]\nseverity = "low"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # From another working directory: the file is found from the path scanned, not from ".".
    run = scan(str(project / "a" / "b" / "public-ami.json"), "-v", cwd=elsewhere)
    assert _rules(run) == ["IBD002"]
    assert run.report["findings"][0]["severity"] == "low"
    assert run.report["summary"]["findings"]["low"] == 1
    assert f"ib-audit: config: {project / '.ib-audit.toml'}\n" in run.err
    # Several paths: their common directory is where the search starts.
    (project / "c").mkdir()
    shutil.copy(PUBLIC, project / "c" / "other.json")
    both = scan(str(project / "a" / "b"), str(project / "c" / "other.json"), cwd=elsewhere)
    assert both.report["summary"]["findings"]["low"] == 2 and _rules(both) == ["IBD002"]


def test_no_config_found_is_named_with_verbose(scan, project):
    run = scan(str(project / "a"), "-v", cwd=project)
    assert f"ib-audit: config: none found (searched from {project / 'a'} upwards)\n" in run.err


def test_pyproject_tool_table(scan, project):
    (project / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.ib-audit]\nselect = ["IBD00"]\nfail-on = "critical"\n'
        "[tool.ib-audit.rules.ami-name-not-unique]\nenabled = false\n"
    )
    run = scan("a/b/public-ami.json", cwd=project)
    assert _rules(run) == ["IBD002"]
    assert run.code == 1  # critical reaches fail-on critical


def test_pyproject_unknown_key_stops_before_scanning(scan, project):
    (project / "pyproject.toml").write_text("[tool.ib-audit]\nselct = []\n")
    run = scan("a/", cwd=project)
    assert run.code == 2
    assert run.report == {}  # no report: nothing was scanned
    assert run.out == ""
    assert run.err == (
        f"ib-audit: error: {project / 'pyproject.toml'}: unknown key 'tool.ib-audit.selct' (did you mean 'select'?)\n"
    )


def test_flags_override_config(scan, tmp_path):
    (tmp_path / ".ib-audit.toml").write_text('fail-on = "low"\nselect = ["IBD009"]\n')
    run = scan(PUBLIC, "--select", "IBD002", "--fail-on", "never", cwd=tmp_path)
    assert _rules(run) == ["IBD002"]
    assert run.code == 0


def test_fail_on_thresholds(scan):
    assert scan(PUBLIC, "--fail-on", "critical").code == 1
    assert scan(PUBLIC, "--select", "IBD009", "--fail-on", "high").code == 0
    assert scan(PUBLIC, "--select", "IBD009", "--fail-on", "medium").code == 1
    assert scan(PUBLIC, "--exit-zero").code == 0


def test_info_findings_never_fail(scan, project):
    (project / ".ib-audit.toml").write_text('fail-on = "info"\n[rules.IBD002]\nseverity = "info"\n')
    run = scan("a/b/public-ami.json", "--select", "IBD002", cwd=project)
    assert run.findings() and run.code == 0


def test_ignore_beats_enabled_and_slugs_select(scan, tmp_path):
    (tmp_path / ".ib-audit.toml").write_text('select = ["ami-public-launch-permission", "IBD009"]\n')
    run = scan(PUBLIC, "--ignore", "IBD009", cwd=tmp_path)
    assert _rules(run) == ["IBD002"]


def test_a_retired_rule_in_config_or_flags_is_a_warning_not_an_error(scan, tmp_path):
    (tmp_path / ".ib-audit.toml").write_text(
        'ignore = ["IBD014"]\n[rules.IBD014]\nmin-minutes = 60\n[rules.distribution-timeout]\nenabled = false\n'
    )
    run = scan(PUBLIC, "--select", "IBD014,IBD002", "--config", str(tmp_path / ".ib-audit.toml"))
    assert run.report["errors"] == []
    assert _rules(run) == ["IBD002"]
    assert run.code == 1  # the critical finding, not a config error
    note = "IBD014 is retired: timeoutMinutes is a member Image Builder does not use"
    warnings = [line for line in run.err.splitlines() if line.startswith("ib-audit: warning:")]
    config = tmp_path / ".ib-audit.toml"
    assert sorted(w.split(" (")[0] for w in warnings) == [
        f"ib-audit: warning: --select: {note}; IBD017",
        f"ib-audit: warning: {config}: ignore: {note}; IBD017",
        f"ib-audit: warning: {config}: rules.IBD014: {note}; IBD017",
        f"ib-audit: warning: {config}: rules.distribution-timeout: {note}; IBD017",
    ]
    assert [w["kind"] for w in run.report["warnings"]] == ["retired-rule"] * 4


def test_owner_account_and_region_are_checked(scan, tmp_path):
    (tmp_path / ".ib-audit.toml").write_text('owner-account = "1111-2222-3333"\nowner-region = "us-eest-1"\n')
    run = scan(PUBLIC, "--config", str(tmp_path / ".ib-audit.toml"))
    config = str(tmp_path / ".ib-audit.toml")
    assert run.err.splitlines() == [
        f"ib-audit: error: {config}: owner-account: expected a 12-digit AWS account id, got '1111-2222-3333'",
        f"ib-audit: error: {config}: owner-region: 'us-eest-1' is not an AWS region; did you mean 'us-east-1' or "
        "'us-west-1'?",
    ]
    assert run.code == 2
