"""Each rule against its pass and fail fixtures; complete findings are compared.

tests/fixtures/rules/<ID>/case.toml states the options and every expected finding
(path and line); the lines were read off the fixture files with grep, not produced by
the tool.
"""

from __future__ import annotations

import json
import tomllib

import pytest

from auditor.rules import BUILTIN_RULES

from conftest import FIXTURES

RULE_DIR = FIXTURES / "rules"
RULE_IDS = sorted(r.id for r in BUILTIN_RULES)


def _config_for(tmp_path, rule_id: str, options: dict) -> str:
    lines = [f"[rules.{rule_id}]"]
    # JSON strings, numbers, booleans and lists are valid TOML values.
    lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    path = tmp_path / "policy.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_every_rule_has_fixtures():
    assert sorted(p.name for p in RULE_DIR.iterdir() if p.is_dir()) == RULE_IDS


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_fail_fixture(rule_id, scan, tmp_path):
    case = tomllib.loads((RULE_DIR / rule_id / "case.toml").read_text())
    config = _config_for(tmp_path, rule_id, case.get("options", {}))
    fixture = RULE_DIR / rule_id / "fail.json"
    run = scan(str(fixture), "--select", rule_id, "--config", config)
    file = f"tests/fixtures/rules/{rule_id}/fail.json"
    expected = sorted((rule_id, path, file, line) for path, line in case["expected"])
    assert sorted(run.findings()) == expected
    assert run.code == 1
    assert run.report["errors"] == []


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_pass_fixture(rule_id, scan, tmp_path):
    case = tomllib.loads((RULE_DIR / rule_id / "case.toml").read_text())
    config = _config_for(tmp_path, rule_id, case.get("options", {}))
    run = scan(str(RULE_DIR / rule_id / "pass.json"), "--select", rule_id, "--config", config)
    assert run.findings() == []
    assert run.code == 0
    assert [t["status"] for t in run.report["targets"]] == ["audited"]


def test_require_customer_managed_false_accepts_aws_managed_key(scan, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[rules.ami-kms-key-required]\nrequire-customer-managed = false\n")
    run = scan(str(RULE_DIR / "IBD001" / "fail.json"), "--select", "IBD001", "--config", str(config))
    assert run.findings() == [
        ("IBD001", "/distributions/0/amiDistributionConfiguration", "tests/fixtures/rules/IBD001/fail.json", 4)
    ]


def test_allowlist_rules_are_inactive_without_options_but_malformed_values_fire(scan):
    run = scan(str(RULE_DIR / "IBD006" / "fail.json"), "--select", "IBD006")
    assert run.findings() == [
        (
            "IBD006",
            "/distributions/0/amiDistributionConfiguration/launchPermission/userIds/0",
            "tests/fixtures/rules/IBD006/fail.json",
            8,
        )
    ]


def test_columns_and_end_positions_point_at_the_value(scan):
    run = scan(str(RULE_DIR / "IBD002" / "fail.json"), "--select", "IBD002")
    loc = run.report["findings"][0]["location"]
    line = (RULE_DIR / "IBD002" / "fail.json").read_text().splitlines()[3]
    start = line.index('"all"') + 1
    assert (loc["start_line"], loc["start_column"], loc["end_line"], loc["end_column"]) == (
        4,
        start,
        4,
        start + len('"all"'),
    )


def test_every_rule_documents_why_example_fix():
    for rule in BUILTIN_RULES:
        sections = rule.help_sections()
        assert {"why", "example", "fix"} <= set(sections), rule.id
        assert all(sections[k].strip() for k in ("summary", "why", "example", "fix")), rule.id
        assert rule.severity is not None and rule.slug and rule.summary
