"""The asff report: every finding passes botocore's BatchImportFindings model, whole findings
compared, and configurations without an account or region are an error, never invented."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import replace

from asff_checks import validate_findings

from auditor.cli import main
from auditor.model import Origin, Suppression, Target
from auditor.reports import asff
from auditor.rules import AmiPublicLaunchPermission

from conftest import EXAMPLES, FIXTURES, REPO

POLICY = "examples/ib-audit.toml"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _scan(tmp_path, capsys, monkeypatch, *args):
    monkeypatch.chdir(REPO)
    out, report = tmp_path / "asff.json", tmp_path / "report.json"
    code = main(["scan", *args, "-f", f"asff={out}", "-f", f"json={report}", "-q"])
    err = capsys.readouterr().err
    findings = json.loads(out.read_text()) if out.exists() else None
    return code, findings, json.loads(report.read_text()), err


def _grep_line(path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_every_finding_of_the_examples_passes_botocores_model(tmp_path, capsys, monkeypatch):
    code, findings, report, err = _scan(
        tmp_path,
        capsys,
        monkeypatch,
        "examples/",
        "--config",
        POLICY,
        "--asff-account",
        "999988887777",
        "--asff-region",
        "eu-west-1",
    )
    assert code == 1, err
    assert validate_findings(findings) == []
    # One ASFF finding per finding, the fingerprint as its Id (reruns update, not duplicate).
    assert sorted(f["Id"] for f in findings) == sorted(f["fingerprint"] for f in report["findings"])
    targets = {t["id"]: t for t in report["targets"]}
    by_id = {f["fingerprint"]: f for f in report["findings"]}
    for asff_finding in findings:
        finding = by_id[asff_finding["Id"]]
        origin = targets[finding["target"]]["origin"]
        account, region = origin.get("account", "999988887777"), origin.get("region", "eu-west-1")
        assert asff_finding["AwsAccountId"] == account
        assert asff_finding["ProductArn"] == f"arn:aws:securityhub:{region}:{account}:product/{account}/default"
        assert asff_finding["GeneratorId"] == f"ib-audit/{finding['rule_id']}"
        assert asff_finding["Resources"][0]["Id"] == targets[finding["target"]]["identity"]
        assert asff_finding["ProductFields"]["ib-audit/Path"] == (finding["path"] or "/")
        for key in ("CreatedAt", "UpdatedAt", "FirstObservedAt", "LastObservedAt"):
            assert TIMESTAMP.match(asff_finding[key]), asff_finding[key]


def test_the_public_ami_finding_whole(tmp_path, capsys, monkeypatch):
    code, findings, report, _ = _scan(tmp_path, capsys, monkeypatch, "examples/public-ami.json")
    assert code == 1
    (finding,) = [f for f in findings if f["GeneratorId"] == "ib-audit/IBD002"]
    (json_finding,) = [f for f in report["findings"] if f["rule_id"] == "IBD002"]
    line = _grep_line(EXAMPLES / "public-ami.json", '"userGroups": ["all"]')
    controls = tomllib.loads((REPO / "auditor" / "controls.toml").read_text())["rules"]["IBD002"]["nist-800-53-r5"]
    now = finding["UpdatedAt"]
    types = [
        "Software and Configuration Checks",
        "Software and Configuration Checks/Industry and Regulatory Standards/NIST 800-53 Controls (USA)",
    ]
    config = json.loads((EXAMPLES / "public-ami.json").read_text())["distributionConfiguration"]
    arn = config["arn"]
    assert finding == {
        "SchemaVersion": "2018-10-08",
        "Id": json_finding["fingerprint"],
        "ProductArn": "arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default",
        "ProductName": "ib-audit",
        "CompanyName": "ib-audit",
        "GeneratorId": "ib-audit/IBD002",
        "AwsAccountId": "111122223333",
        "Types": types,
        "CreatedAt": now,
        "UpdatedAt": now,
        "FirstObservedAt": now,
        "LastObservedAt": now,
        "Severity": {"Label": "CRITICAL", "Original": "critical"},
        "FindingProviderFields": {"Severity": {"Label": "CRITICAL", "Original": "critical"}, "Types": types},
        "Title": "IBD002 AMI launch permission must not include the public group 'all'",
        "Description": "AMI distributed to us-east-1 is public (userGroups contains 'all'); remove it",
        "Remediation": {
            "Recommendation": {
                "Text": 'Remove "all" from `userGroups` and share with the accounts, organizations or OUs that need '
                "the image (`userIds`, `organizationArns`, `organizationalUnitArns`).",
                "Url": "https://github.com/ib-audit/ib-audit/blob/main/docs/rules.md#ibd002-ami-public-launch-permission",
            }
        },
        "ProductFields": {
            "ProviderName": "ib-audit",
            "ProviderVersion": finding["ProductFields"]["ProviderVersion"],
            "ib-audit/RuleId": "IBD002",
            "ib-audit/Rule": "ami-public-launch-permission",
            "ib-audit/Path": "/distributions/0/amiDistributionConfiguration/launchPermission/userGroups/0",
        },
        "Resources": [
            {
                "Type": "Other",
                "Id": arn,
                "Region": "us-east-1",
                "Partition": "aws",
                "Tags": config["tags"],
                "Details": {
                    "Other": {
                        "Path": "/distributions/0/amiDistributionConfiguration/launchPermission/userGroups/0",
                        "Location": f"examples/public-ami.json:{line}:47",
                        "Name": config["name"],
                        "File": "examples/public-ami.json",
                        "DistributionRegions": "us-east-1",
                        "Distributions": json.dumps(config["distributions"], sort_keys=True),
                        "Value": '"all"',
                    }
                },
            }
        ],
        "Compliance": {"Status": "FAILED", "RelatedRequirements": [f"NIST.800-53.r5 {c}" for c in controls]},
        "RecordState": "ACTIVE",
    }


def test_configurations_without_account_or_region_are_an_error_not_invented(tmp_path, capsys, monkeypatch):
    code, findings, report, err = _scan(
        tmp_path, capsys, monkeypatch, "examples/terraform/", "examples/public-ami.json"
    )
    assert code == 2
    assert findings is None  # nothing half-written
    assert report["findings"]  # the other reports are still written
    assert err.strip().splitlines() == [
        "ib-audit: error: cannot write the asff report: 4 configuration(s) have no AWS account or region "
        "(examples/terraform/main.tf#aws_imagebuilder_distribution_configuration.golden, "
        "examples/terraform/main.tf#aws_imagebuilder_distribution_configuration.windows, "
        "examples/terraform/main.tf#aws_imagebuilder_distribution_configuration.containers and 1 more); "
        "pass --asff-account ID and --asff-region REGION to say where Security Hub should file them"
    ]


def test_asff_account_must_be_an_account_id_and_comes_with_a_region(capsys):
    assert main(["scan", "examples/public-ami.json", "-f", "asff", "--asff-account", "12345"]) == 2
    assert capsys.readouterr().err == "ib-audit: error: --asff-account takes a 12-digit AWS account id, got '12345'\n"
    assert main(["scan", "examples/public-ami.json", "-f", "asff", "--asff-account", "123456789012"]) == 2
    assert capsys.readouterr().err == "ib-audit: error: --asff-account and --asff-region go together\n"


def test_a_suppressed_finding_is_created_suppressed_with_its_reason(tmp_path, capsys, monkeypatch):
    _, findings, report, _ = _scan(tmp_path, capsys, monkeypatch, "examples/mixed-estate.json")
    (suppressed,) = [f for f in report["findings"] if f["suppressed"]]
    (finding,) = [f for f in findings if f["Id"] == suppressed["fingerprint"]]
    assert suppressed["suppressed"] == {"kind": "tag", "reason": "accepted until Q3 (SEC-142)"}
    assert finding["Compliance"]["Status"] == "FAILED"  # still failing: accepted, not fixed
    assert finding["Workflow"] == {"Status": "SUPPRESSED"}
    assert finding["Note"] == {
        "Text": "Suppressed in ib-audit (tag): accepted until Q3 (SEC-142)",
        "UpdatedBy": "ib-audit",
        "UpdatedAt": finding["UpdatedAt"],
    }
    assert finding["ProductFields"]["ib-audit/Suppressed"] == "tag: accepted until Q3 (SEC-142)"
    assert all("Workflow" not in f for f in findings if f["Id"] != suppressed["fingerprint"])
    assert validate_findings(findings) == []


def _finding(message="m", rule=AmiPublicLaunchPermission):
    from auditor.model import Finding, Location, Severity

    return Finding(rule.id, rule.slug, Severity.CRITICAL, message, "t", "/distributions/0", Location(arn="a"), "f" * 32)


def test_long_values_are_clipped_to_the_documented_maximums():
    target = Target(
        id="t",
        name="n" * 2000,
        origin=Origin(kind="aws", arn="arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/x"),
        config={"distributions": [{"region": "us-east-1", "description": "d" * 5000}], "tags": {"k" * 300: "v" * 300}},
    )
    where = asff.Placement("111122223333", "us-east-1", "aws")
    finding = replace(_finding("x " * 3000), suppressed=Suppression("config", "r" * 3000))
    built = asff.build(finding, AmiPublicLaunchPermission, target, where, asff.timestamp())
    assert validate_findings([built]) == []
    assert len(built["Description"]) == 1024 and built["Description"].endswith("\u2026")
    assert len(built["Note"]["Text"]) == 512


def test_partitions_follow_the_arn_and_unknown_ones_are_left_out():
    def resource_partition(arn=None, region=None, account=None):
        target = Target(id="t", name="n", origin=Origin(kind="aws", arn=arn, region=region, account=account))
        where = asff.placement(target, "111122223333", "us-east-1")
        built = asff.build(_finding(), AmiPublicLaunchPermission, target, where, asff.timestamp())
        return built["ProductArn"], built["Resources"][0].get("Partition")

    gov = "arn:aws-us-gov:imagebuilder:us-gov-west-1:111122223333:distribution-configuration/x"
    assert resource_partition(gov, "us-gov-west-1", "111122223333") == (
        "arn:aws-us-gov:securityhub:us-gov-west-1:111122223333:product/111122223333/default",
        "aws-us-gov",
    )
    assert resource_partition(None, "cn-north-1", "111122223333") == (
        "arn:aws-cn:securityhub:cn-north-1:111122223333:product/111122223333/default",
        "aws-cn",
    )
    # aws-iso-e is a partition Security Hub's Resource.Partition enum does not list.
    assert resource_partition(None, "eu-isoe-west-1", "111122223333")[1] is None


def test_a_template_with_conditions_gives_each_branch_its_value(tmp_path, capsys, monkeypatch):
    """A finding that holds under one condition: Details.Other shows the value of every
    branch with when it holds, never one branch's value as the value."""
    template = EXAMPLES / "cloudformation" / "conditional-sharing.yaml"
    code, findings, _, _ = _scan(
        tmp_path, capsys, monkeypatch, str(template), "--asff-account", "111122223333", "--asff-region", "us-east-1"
    )
    assert code == 1
    validate_findings(findings)
    other = {f["GeneratorId"]: f["Resources"][0]["Details"]["Other"] for f in findings}
    text = template.read_text()
    assert "UserGroups: !If [IsProd, [all], !Ref AWS::NoValue]" in text  # what the branches below come from
    assert (
        other["ib-audit/IBD002"]["Value"]
        == 'when condition IsProd is true: "all"; when condition IsProd is false: (not set)'
    )
    key = re.search(r"eu-west-1:\n\s+Key: (\S+)", text).group(1)
    assert "KmsKeyId: !If [IsProd, !Ref AWS::NoValue, !FindInMap [RegionKeys, eu-west-1, Key]]" in text
    ibd001 = other["ib-audit/IBD001"]["Value"]
    assert ibd001.startswith("when condition IsProd is true: {") and '"kmsKeyId"' not in ibd001.split("; when")[0]
    assert "; when condition IsProd is false: {" in ibd001 and f'"kmsKeyId": "{key}"' in ibd001
    # Where the branches agree, the value stands alone, as for any configuration.
    assert other["ib-audit/IBD009"]["Value"] == '"golden-al2023-release"'
    assert other["ib-audit/IBD009"]["DistributionRegions"] == "us-east-1,eu-west-1"


def test_tags_only_one_branch_sets_are_not_the_resources_tags(tmp_path, capsys, monkeypatch):
    """Security Hub automation filters on Resources[].Tags: a tag that holds only when
    IsProd is true (Env defaults to dev) must not read as the resource's. Those stay in
    Details.Other, per branch; Tags keeps what every branch sets alike."""
    template = FIXTURES / "reports" / "conditional-tags.yaml"
    code, findings, _, _ = _scan(
        tmp_path, capsys, monkeypatch, str(template), "--asff-account", "111122223333", "--asff-region", "us-east-1"
    )
    assert code == 1
    validate_findings(findings)
    [public] = [f for f in findings if f["GeneratorId"] == "ib-audit/IBD002"]
    resource = public["Resources"][0]
    assert resource["Tags"] == {"owner": "platform"}
    assert resource["Details"]["Other"]["Tags"] == (
        "when condition IsProd is true: owner=platform, data-class=confidential, backup=daily; "
        "when condition IsProd is false: owner=platform, data-class=internal"
    )
