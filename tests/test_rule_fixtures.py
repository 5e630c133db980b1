"""Each rule against its pass and fail fixtures; complete findings are compared.

tests/fixtures/rules/<ID>/case.toml states the options and every expected finding
(path and line) of fail.json; its ``[cases.NAME]`` tables name further fixture files
in the folder (JSON, CloudFormation or Terraform), each with its options, top-level
settings (``owner-account``...) and expected findings (``[]`` for a pass case). The
lines were read off the fixture files with grep, not produced by the tool.
"""

from __future__ import annotations

import json
import tomllib

import pytest

from auditor.rules import BUILTIN_RULES

from conftest import FIXTURES

RULE_DIR = FIXTURES / "rules"
# Account-context rules need AWS; their pass, fail and could-not-verify cases run against
# moto in tests/test_context.py.
RULE_IDS = sorted(r.id for r in BUILTIN_RULES if not r.retired and not r.needs_aws_context())


def _config_for(tmp_path, rule_id: str, options: dict, settings: dict | None = None) -> str:
    # JSON strings, numbers, booleans and lists are valid TOML values.
    lines = [f"{key} = {json.dumps(value)}" for key, value in (settings or {}).items()]
    lines += [f"[rules.{rule_id}]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    path = tmp_path / "policy.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _extra_cases():
    for rule_id in RULE_IDS:
        case = tomllib.loads((RULE_DIR / rule_id / "case.toml").read_text())
        for name, spec in case.get("cases", {}).items():
            yield pytest.param(rule_id, spec, id=f"{rule_id}-{name}")


def test_every_rule_has_fixtures():
    assert sorted(p.name for p in RULE_DIR.iterdir() if p.is_dir()) == RULE_IDS


@pytest.mark.parametrize(("rule_id", "spec"), list(_extra_cases()))
def test_case_fixture(rule_id, spec, scan, tmp_path):
    config = _config_for(tmp_path, rule_id, spec.get("options", {}), spec.get("settings"))
    file = f"tests/fixtures/rules/{rule_id}/{spec['file']}"
    run = scan(file, "--select", rule_id, "--config", config)
    assert sorted(run.findings()) == sorted((rule_id, path, file, line) for path, line in spec["expected"])
    assert run.code == (1 if any(f["severity"] != "info" for f in run.report["findings"]) else 0)
    assert run.report["errors"] == []
    assert {t["status"] for t in run.report["targets"]} == {"audited"}


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
    for rule in (r for r in BUILTIN_RULES if not r.retired):
        sections = rule.help_sections()
        assert {"why", "example", "fix"} <= set(sections), rule.id
        assert all(sections[k].strip() for k in ("summary", "why", "example", "fix")), rule.id
        assert rule.severity is not None and rule.slug and rule.summary


def _by_path(run) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in run.report["findings"]:
        out.setdefault(f["path"], []).append(f)
    return out


def test_a_rule_can_report_one_finding_below_its_severity_and_config_overrides_it(scan, tmp_path):
    run = scan(str(RULE_DIR / "IBD003" / "fail.json"), "--select", "IBD003")
    severities = {path: [f["severity"] for f in fs] for path, fs in _by_path(run).items()}
    assert severities["/distributions/0/fastLaunchConfigurations/2"] == ["info"]  # EC2 uses the default VPC
    assert severities["/distributions/0/fastLaunchConfigurations/0/maxParallelLaunches"] == ["medium"]
    config = _config_for(tmp_path, "IBD003", {"require-launch-template": True})
    run = scan(str(RULE_DIR / "IBD003" / "fail.json"), "--select", "IBD003", "--config", config)
    assert _by_path(run)["/distributions/0/fastLaunchConfigurations/2"][0]["severity"] == "medium"
    (tmp_path / "high.toml").write_text('[rules.IBD013]\nseverity = "high"\n')
    run = scan(str(RULE_DIR / "IBD013" / "fail.json"), "--select", "IBD013", "--config", str(tmp_path / "high.toml"))
    assert {f["severity"] for f in run.report["findings"]} == {"high"}  # the low containerTags one too


def test_policy_caps_are_not_called_ec2_limits(scan):
    run = scan(str(RULE_DIR / "IBD003" / "fail.json"), "--select", "IBD003")
    by_path = _by_path(run)
    assert by_path["/distributions/0/fastLaunchConfigurations/1/maxParallelLaunches"][0]["message"] == (
        "maxParallelLaunches is 41, above the max-parallel-launches policy cap of 40 (EC2's default per-Region "
        "quota); lower it, or raise the option if your quota allows"
    )
    assert by_path["/distributions/0/fastLaunchConfigurations/0/maxParallelLaunches"][0]["message"] == (
        "maxParallelLaunches is 5; EC2 fast launch rejects fewer than 6"
    )


def test_unknown_lists_say_so_and_unresolved_halves_are_unverified(scan):
    run = scan(str(RULE_DIR / "IBD003" / "lookup.tf"), "--select", "IBD003")
    assert [(u["path"], u["reason"]) for u in run.report["unverified"]] == [
        (
            "/distributions/0/fastLaunchConfigurations/0/launchTemplate",
            "launchTemplateId or launchTemplateName is not a literal (it may be null)",
        )
    ]


def test_findings_say_when_the_owner_account_was_unknown(scan, tmp_path):
    file = str(RULE_DIR / "IBD015" / "declared-owner.json")
    unknown = scan(file, "--select", "IBD015")
    assert [f["message"] for f in unknown.report["findings"]][1] == (
        "leaves 'setDefaultVersion' out, which means true, so it sets the default launch template version in "
        "account 444455556666; set 'setDefaultVersion' to false and let that account promote it (the owner "
        "account is unknown: declare it with owner-account)"
    )
    declared = scan(
        file, "--select", "IBD015", "--config", _config_for(tmp_path, "IBD015", {}, {"owner-account": "111122223333"})
    )
    assert [f["message"] for f in declared.report["findings"]] == [
        "leaves 'setDefaultVersion' out, which means true, so it sets the default launch template version in "
        "account 444455556666; set 'setDefaultVersion' to false and let that account promote it"
    ]
    terraform = scan(str(RULE_DIR / "IBD015" / "accounts.tf"), "--select", "IBD015")
    assert terraform.report["findings"][0]["message"].startswith("leaves 'default' out, which means true")


def test_a_public_copy_that_kms_encrypts_cannot_be_made_public(scan):
    run = scan(str(RULE_DIR / "IBD002" / "encrypted-copy.json"), "--select", "IBD002")
    assert [f["message"] for f in run.report["findings"]] == [
        "AMI distributed to eu-west-1 is public (userGroups contains 'all'); remove it; kmsKeyId encrypts this copy "
        "and EC2 cannot make an AMI with encrypted snapshots public, so it fails"
    ]
    run = scan(str(RULE_DIR / "IBD002" / "fail.json"), "--select", "IBD002")
    assert [(f["severity"], f["message"]) for f in run.report["findings"]][1] == (
        "medium",
        "userGroups 'team' is not a launch permission group: the only one is 'all' (public), so EC2 rejects it and "
        "the distribution to us-west-2 fails; share with userIds, organizationArns or organizationalUnitArns instead",
    )


def test_kms_key_where_the_own_region_is_unknown(scan):
    run = scan(str(RULE_DIR / "IBD001" / "fail.json"), "--select", "IBD001")
    assert _by_path(run)["/distributions"][0]["message"] == (
        "2 distributions (eu-west-1, eu-west-2) have no customer-managed kmsKeyId and at most one of them is the "
        "configuration's own region, so at least 1 AMI copy is not encrypted with a key you control (own region "
        "unknown: declare owner-region to name them)"
    )
    run = scan(str(RULE_DIR / "IBD001" / "unknown-region.json"), "--select", "IBD001")
    assert run.findings() == []
    assert [(u["rule_id"], u["path"], u["reason"]) for u in run.report["unverified"]] == [
        (
            "IBD001",
            "/distributions/0/amiDistributionConfiguration",
            "no customer-managed kmsKeyId for us-west-2: needed unless us-west-2 is the configuration's own region "
            "(unknown here: declare owner-region), where the key does not apply",
        )
    ]


def test_region_names_get_a_did_you_mean_and_constraints_name_their_value(scan):
    run = scan(str(RULE_DIR / "IBD011" / "regions.json"), "--select", "IBD011")
    assert _by_path(run)["/distributions/1/region"][0]["message"] == (
        "'us-eest-1' is not an AWS region; did you mean 'us-east-1' or 'us-west-1'?"
    )
    run = scan(str(RULE_DIR / "IBD017" / "fail.json"), "--select", "IBD017")
    by_path = _by_path(run)
    assert by_path["/distributions/0/ssmParameterConfigurations/0/dataType"][0]["message"] == (
        "dataType 'aws:ec2:Image' is not one of 'text', 'aws:ec2:image'; did you mean 'aws:ec2:image'?"
    )
    assert by_path["/distributions/0/ssmParameterConfigurations/1/dataType"][0]["severity"] == "low"
    assert by_path["/timeoutMinutes"][0]["message"] == (
        "'timeoutMinutes' is not accepted in create or update requests: Image Builder does not use it; remove it"
    )
    assert by_path["/distributions/1/amiDistributionConfiguration/name"][0]["message"] == (
        "AMI name is 156 characters long; the API allows at most 127"
    )


def test_ibd017_quotes_short_patterns_and_names_long_ones(scan, tmp_path):
    """A pattern of hundreds of characters would bury the message; short ones help."""
    doc = tmp_path / "input.json"
    doc.write_text(
        json.dumps(
            {
                "distributionConfigurationArn": "arn:aws:imagebuilder:us-west-2:123456789012:distribution-configuration/x.json",
                "distributions": [{"region": "us-west-2", "amiDistributionConfiguration": {"name": "a (b)"}}],
            },
            indent=2,
        )
    )
    run = scan(str(doc), "--select", "IBD017")
    assert [(f["path"], f["message"]) for f in run.report["findings"]] == [
        (
            "/arn",
            "the configuration ARN 'arn:aws:imagebuilder:us-west-2:123456789012:distribution-configuration/x.json' "
            "does not match the API's ImageBuilderArn pattern (botocore's imagebuilder model)",
        ),
        (
            "/distributions/0/amiDistributionConfiguration/name",
            "AMI name 'a (b)' does not match the API's pattern ^[-_A-Za-z0-9{][-_A-Za-z0-9\\s:{}\\.]+[-_A-Za-z0-9}]$",
        ),
    ]
