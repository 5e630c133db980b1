"""Configuration discovery, select/ignore, severity and options overrides."""

from __future__ import annotations

from conftest import EXAMPLES

PUBLIC = str(EXAMPLES / "public-ami.json")


def _rules(run):
    return sorted({f[0] for f in run.findings()})


def test_dot_ib_audit_toml_is_found_upwards(scan, tmp_path):
    (tmp_path / ".ib-audit.toml").write_text('ignore = ["IBD009"]\n[rules.IBD002]\nseverity = "low"\n')
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    run = scan(PUBLIC, cwd=sub)
    assert _rules(run) == ["IBD002"]
    assert run.report["findings"][0]["severity"] == "low"
    assert run.report["summary"]["findings"]["low"] == 1


def test_pyproject_tool_table(scan, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.ib-audit]\nselect = ["IBD00"]\nfail-on = "critical"\n'
        "[tool.ib-audit.rules.ami-name-not-unique]\nenabled = false\n"
    )
    run = scan(PUBLIC, cwd=tmp_path)
    assert _rules(run) == ["IBD002"]
    assert run.code == 1  # critical reaches fail-on critical


def test_pyproject_unknown_key_names_the_table(scan, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.ib-audit]\nselct = []\n")
    run = scan(PUBLIC, cwd=tmp_path)
    assert run.report["errors"] == [
        {
            "input": str(tmp_path / "pyproject.toml"),
            "message": "unknown key 'tool.ib-audit.selct' (did you mean 'select'?)",
        }
    ]
    assert run.code == 2


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


def test_info_findings_never_fail(scan, tmp_path):
    (tmp_path / ".ib-audit.toml").write_text('fail-on = "info"\n[rules.IBD002]\nseverity = "info"\n')
    run = scan(PUBLIC, "--select", "IBD002", cwd=tmp_path)
    assert run.findings() and run.code == 0


def test_ignore_beats_enabled_and_slugs_select(scan, tmp_path):
    (tmp_path / ".ib-audit.toml").write_text('select = ["ami-public-launch-permission", "IBD009"]\n')
    run = scan(PUBLIC, "--ignore", "IBD009", cwd=tmp_path)
    assert _rules(run) == ["IBD002"]
