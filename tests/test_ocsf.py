"""The ocsf report: Compliance Finding events validated by py-ocsf-models, one per finding and
one per check that passed (or could not be verified)."""

from __future__ import annotations

import importlib
import json
import sys
import tomllib

import pytest
from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding
from py_ocsf_models.objects.cloud import Cloud

from auditor.cli import main
from auditor.reports.ocsf import CloudComplianceFinding, check_uid

from conftest import FIXTURES, REPO

POLICY = "examples/ib-audit.toml"


@pytest.fixture
def ocsf_scan(tmp_path, capsys, monkeypatch):
    def run(*args):
        monkeypatch.chdir(REPO)
        out, report = tmp_path / "events.jsonl", tmp_path / "report.json"
        code = main(["scan", *args, "-f", f"ocsf={out}", "-f", f"json={report}", "-q"])
        capsys.readouterr()
        events = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else None
        return code, events, json.loads(report.read_text())

    return run


def test_every_event_is_a_valid_compliance_finding(ocsf_scan):
    code, events, _ = ocsf_scan("examples/", "--config", POLICY)
    assert code == 1 and events
    for event in events:
        # Nothing the model does not know (it would be dropped on the round trip), nothing
        # of the wrong type (validation raises), and the library's own class accepts it.
        again = CloudComplianceFinding.model_validate(event).model_dump(mode="json", exclude_none=True)
        assert again == event
        ComplianceFinding.model_validate(event)
        if "cloud" in event:
            Cloud.model_validate(event["cloud"])
        assert (event["class_uid"], event["category_uid"], event["type_uid"]) == (2003, 2, 200301)
        assert event["metadata"]["version"] == "1.5.0"


def test_one_event_per_finding_and_per_check_that_passed(ocsf_scan):
    _, events, report = ocsf_scan("examples/", "--config", POLICY)
    statuses = {1: "Pass", 2: "Warning", 3: "Fail"}
    got = sorted((e["finding_info"]["uid"], statuses[e["compliance"]["status_id"]]) for e in events)
    failed = {(f["target"], f["rule_id"]) for f in report["findings"]}
    unverified = {(u["target"], u["rule_id"]) for u in report["unverified"]} - failed
    identity = {t["id"]: t["identity"] for t in report["targets"]}
    expected = [(f["fingerprint"], "Fail") for f in report["findings"]]
    for target in report["targets"]:
        for rule in report["rules"]:
            key = (target["id"], rule["id"])
            if key in failed:
                continue
            status = "Warning" if key in unverified else "Pass"
            expected.append((check_uid(rule["id"], identity[target["id"]]), status))
    assert got == sorted(expected)
    assert len(events) == len(report["findings"]) + len(report["targets"]) * len(report["rules"]) - len(failed)


def test_the_public_ami_failure_carries_its_controls_and_account(ocsf_scan):
    _, events, report = ocsf_scan("examples/public-ami.json")
    (json_finding,) = [f for f in report["findings"] if f["rule_id"] == "IBD002"]
    (event,) = [e for e in events if e["finding_info"]["uid"] == json_finding["fingerprint"]]
    controls = tomllib.loads((REPO / "auditor" / "controls.toml").read_text())["rules"]["IBD002"]["nist-800-53-r5"]
    arn = json.loads((REPO / "examples" / "public-ami.json").read_text())["distributionConfiguration"]["arn"]
    assert event["severity_id"] == 5 and event["status_id"] == 1  # Critical, New
    assert event["message"] == json_finding["message"]
    assert event["compliance"] == {
        "checks": [
            {
                "desc": event["compliance"]["checks"][0]["desc"],
                "name": "AMI launch permission must not include the public group 'all'",
                "severity": "critical",
                "severity_id": 5,
                "standards": ["NIST SP 800-53 Rev. 5"],
                "status": "Fail",
                "status_id": 3,
                "uid": "IBD002",
            }
        ],
        "desc": "AMI launch permission must not include the public group 'all'",
        "requirements": [f"NIST.800-53.r5 {c}" for c in controls],
        "standards": ["NIST SP 800-53 Rev. 5"],
        "status_id": 3,
    }
    assert event["resources"][0]["uid"] == arn
    assert event["resources"][0]["data"]["path"] == json_finding["path"]
    assert event["cloud"] == {
        "account": {"name": "111122223333", "type": "AWS Account", "type_id": 10, "uid": "111122223333"},
        "provider": "AWS",
        "region": "us-east-1",
    }
    assert event["metadata"]["profiles"] == ["cloud"]
    assert event["remediation"]["references"] == [
        "https://github.com/ib-audit/ib-audit/blob/main/docs/rules.md#ibd002-ami-public-launch-permission"
    ]


def test_suppressed_unverified_and_unreadable(ocsf_scan, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"distributionConfiguration": {"name": ')
    code, events, report = ocsf_scan(
        "examples/mixed-estate.json", "examples/cloudformation/", str(broken), "--config", POLICY
    )
    assert code == 2
    (suppressed,) = [f for f in report["findings"] if f["suppressed"] and f["suppressed"]["kind"] == "tag"]
    (event,) = [e for e in events if e["finding_info"]["uid"] == suppressed["fingerprint"]]
    assert (event["status_id"], event["status"], event["compliance"]["status_id"]) == (3, "Suppressed", 3)
    assert event["unmapped"]["suppressed"] == {"kind": "tag", "reason": "accepted until Q3 (SEC-142)"}
    (u,) = [u for u in report["unverified"] if u["rule_id"] == "IBD006"]  # the !Ref account
    identity = {t["id"]: t["identity"] for t in report["targets"]}
    uid = check_uid(u["rule_id"], identity[u["target"]])
    # One warning per (configuration, rule) that could not verify something and found nothing
    # (IBD001 also lists an unresolved key, but fails on the template's other distribution).
    found = {(f["target"], f["rule_id"]) for f in report["findings"]}
    only_unverified = {(u["target"], u["rule_id"]) for u in report["unverified"]} - found
    assert len([e for e in events if e["compliance"]["status_id"] == 2]) == len(only_unverified)
    (warning,) = [e for e in events if e["compliance"]["status_id"] == 2 and e["finding_info"]["uid"] == uid]
    assert warning["message"] == f"{u['rule_id']} could not verify: {u['path']}: {u['reason']}"
    assert "cloud" not in warning  # a template has no account of its own
    # An input that could not be read was never evaluated: no event claims anything about it.
    assert not [e for e in events if str(broken) in json.dumps(e)]


def test_without_the_library_ocsf_is_a_usage_error_before_the_scan(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "py_ocsf_models", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "auditor.reports.ocsf", raising=False)
    monkeypatch.chdir(REPO)
    events, report = tmp_path / "o.jsonl", tmp_path / "r.json"
    code = main(["scan", "examples/public-ami.json", "-q", "-f", f"json={report}", "-f", f"ocsf={events}"])
    assert code == 2
    assert capsys.readouterr().err == (
        f"ib-audit: error: -f ocsf={events}: the ocsf report needs py-ocsf-models (py_ocsf_models); "
        "pip install 'ib-audit[ocsf]'\n"
    )
    # Nothing was scanned: the report listed first was not written either.
    assert not report.exists() and not events.exists()
    # merge checks the same before it reads any report.
    code = main(["merge", str(REPO / "examples" / "public-ami.json"), "-f", "ocsf"])
    assert code == 2
    assert capsys.readouterr() == (
        "",
        "ib-audit: error: -f ocsf: the ocsf report needs py-ocsf-models (py_ocsf_models); "
        "pip install 'ib-audit[ocsf]'\n",
    )
    monkeypatch.undo()
    importlib.import_module("auditor.reports.ocsf")


def test_labels_are_only_the_tags_every_branch_sets(ocsf_scan):
    """A tag one branch of a condition sets (IsProd; Env defaults to dev) is not a label of
    the resource: it is in the resource's data, per branch, with when it holds."""
    code, events, _ = ocsf_scan(str(FIXTURES / "reports" / "conditional-tags.yaml"))
    assert code == 1
    assert any(e["finding_info"]["title"].startswith("IBD002") and e["status"] == "New" for e in events)
    for resource in [r for e in events for r in e["resources"]]:  # failed checks and passed ones
        assert resource["labels"] == ["owner:platform"]
        assert resource["data"]["tags"] == [
            {
                "when": "when condition IsProd is true",
                "tags": {"owner": "platform", "data-class": "confidential", "backup": "daily"},
            },
            {"when": "when condition IsProd is false", "tags": {"owner": "platform", "data-class": "internal"}},
        ]
