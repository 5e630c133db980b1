"""--security-hub: real boto3 clients against moto's Security Hub (server mode) and against a
local endpoint of our own for what moto cannot do (filters, BatchUpdateFindings,
FailedFindings, throttling, regions without Security Hub, aggregation regions)."""

from __future__ import annotations

import copy
import json
import urllib.request

import boto3
import pytest
from asff_checks import validate_findings
from imagebuilder_server import Faults as ImageBuilderFaults
from imagebuilder_server import ImageBuilderServer
from securityhub_server import SecurityHubServer

from auditor.cli import main

from conftest import EXAMPLES

ACCOUNT = "111122223333"
MOTO_ACCOUNT = "123456789012"  # moto's account for unknown access keys
REGION = "us-east-1"


def _config(example: str, name: str) -> dict:
    config = json.loads((EXAMPLES / example).read_text())["distributionConfiguration"]
    return {**{k: v for k, v in config.items() if k != "arn"}, "name": name}


def _env(monkeypatch, tmp_path, **endpoints):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        **endpoints,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


class Run:
    def __init__(self, code, report, err):
        self.code, self.report, self.err = code, report, err

    def fingerprints(self, rule_id: str | None = None) -> set[str]:
        return {f["fingerprint"] for f in self.report["findings"] if rule_id in (None, f["rule_id"])}


@pytest.fixture
def scan(tmp_path, capsys):
    def run(*args):
        out = tmp_path / "report.json"
        code = main(["scan", "--aws", "--security-hub", "-f", f"json={out}", *args])
        return Run(code, json.loads(out.read_text()), capsys.readouterr().err)

    return run


def _fix_public(server: ImageBuilderServer, account: str, arn: str) -> None:
    config = server.configs[(account, REGION)][arn]
    config["distributions"][0]["amiDistributionConfiguration"]["launchPermission"] = {"userIds": [account]}


# -- moto ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_hub(moto_url, monkeypatch, tmp_path):
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    images = ImageBuilderServer(default_account=MOTO_ACCOUNT)
    arns = {
        "public": images.add(REGION, _config("public-ami.json", "public")),
        "good": images.add(REGION, _config("compliant-baseline.json", "good")),
    }
    _env(monkeypatch, tmp_path, AWS_ENDPOINT_URL_IMAGEBUILDER=images.start(), AWS_ENDPOINT_URL_SECURITYHUB=moto_url)
    client = boto3.client("securityhub", region_name=REGION)
    client.enable_security_hub()
    yield {"images": images, "arns": arns, "client": client}
    images.stop()


def _all_findings(client) -> list[dict]:
    out, token = [], None
    while True:
        page = client.get_findings(MaxResults=100, **({"NextToken": token} if token else {}))
        out += page["Findings"]
        token = page.get("NextToken")
        if not token:
            return out


def test_moto_import_rerun_and_fix(moto_hub, scan):
    client, images, arns = moto_hub["client"], moto_hub["images"], moto_hub["arns"]
    # Another product's finding about the same configuration: never ours to touch.
    foreign = {
        "SchemaVersion": "2018-10-08",
        "Id": "foreign-1",
        "ProductArn": f"arn:aws:securityhub:{REGION}:{MOTO_ACCOUNT}:product/{MOTO_ACCOUNT}/default",
        "GeneratorId": "someone-else/check-7",
        "AwsAccountId": MOTO_ACCOUNT,
        "CreatedAt": "2026-01-01T00:00:00.000Z",
        "UpdatedAt": "2026-01-01T00:00:00.000Z",
        "Title": "t",
        "Description": "d",
        "Resources": [{"Type": "Other", "Id": arns["public"]}],
    }
    assert client.batch_import_findings(Findings=[foreign])["FailedCount"] == 0

    first = scan("--region", REGION)
    assert first.code == 1 and first.report["errors"] == [], first.err
    ours = [f for f in _all_findings(client) if f["GeneratorId"].startswith("ib-audit/")]
    assert sorted(f["Id"] for f in ours) == sorted(first.fingerprints())
    assert validate_findings(ours) == []
    assert {(f["RecordState"], f["Compliance"]["Status"]) for f in ours} == {("ACTIVE", "FAILED")}
    assert {f["Resources"][0]["Id"] for f in ours} == {arns["public"]}
    assert first.report["sinks"]["security-hub"] == {
        "pairs": [f"{MOTO_ACCOUNT}/{REGION}"],
        "imported": 2,
        "new": 2,
        "archived": 0,
        "deleted": 0,
        "suppressed": 0,
        "reopened": 0,
        "rejected": 0,
    }
    assert "ib-audit: security-hub: imported 2, new 2, archived 0" in first.err

    # Unchanged: the same findings updated in place, none added.
    created = {f["Id"]: (f["CreatedAt"], f["UpdatedAt"]) for f in ours}
    second = scan("--region", REGION)
    assert second.fingerprints() == first.fingerprints()
    again = [f for f in _all_findings(client) if f["GeneratorId"].startswith("ib-audit/")]
    assert sorted(f["Id"] for f in again) == sorted(created)
    for f in again:
        assert f["CreatedAt"] == created[f["Id"]][0] and f["UpdatedAt"] > created[f["Id"]][1]

    # Fixed: the public-launch finding is archived as PASSED; the other stays active.
    _fix_public(images, MOTO_ACCOUNT, arns["public"])
    third = scan("--region", REGION)
    (fixed_id,) = first.fingerprints("IBD002")
    assert fixed_id not in third.fingerprints()
    held = {f["Id"]: f for f in _all_findings(client)}
    assert held.pop("foreign-1") == foreign  # exactly as the other product left it
    state = {fid: (f["RecordState"], f["Compliance"]["Status"]) for fid, f in held.items()}
    assert state == {fixed_id: ("ARCHIVED", "PASSED"), **dict.fromkeys(third.fingerprints(), ("ACTIVE", "FAILED"))}
    assert third.report["sinks"]["security-hub"]["archived"] == 1


def test_moto_a_region_whose_configurations_were_all_deleted_is_archived(moto_hub, moto_url, monkeypatch, scan):
    """Nothing is audited in the region any more, so the sink asks STS which account it scanned."""
    client, images, arns = moto_hub["client"], moto_hub["images"], moto_hub["arns"]
    first = scan("--region", REGION)
    assert first.code == 1 and first.report["errors"] == [], first.err
    images.configs[(MOTO_ACCOUNT, REGION)].clear()
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_url)
    second = scan("--region", REGION)
    assert second.code == 0 and second.report["targets"] == [] and second.report["errors"] == [], second.err
    held = {f["Id"]: f for f in _all_findings(client)}
    assert {fid: (f["RecordState"], f["Compliance"]["Status"]) for fid, f in held.items()} == dict.fromkeys(
        first.fingerprints(), ("ARCHIVED", "NOT_AVAILABLE")
    )
    assert {f["Resources"][0]["Id"] for f in held.values()} == {arns["public"]}
    assert second.report["sinks"]["security-hub"]["deleted"] == len(first.fingerprints())
    assert second.report["sinks"]["security-hub"]["pairs"] == [f"{MOTO_ACCOUNT}/{REGION}"]


def _account_of_access_key(key: str) -> str | None:
    from moto.sts.models import sts_backends

    for account, partitions in list(sts_backends.items()):
        for role in partitions["aws"].assumed_roles:
            if role.access_key_id == key:
                return account
    return None


def test_moto_organization_scan_sends_each_finding_to_its_own_account(moto_url, monkeypatch, tmp_path, scan):
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    images = ImageBuilderServer()
    images.resolve_account = _account_of_access_key
    _env(
        monkeypatch,
        tmp_path,
        AWS_ENDPOINT_URL_STS=moto_url,
        AWS_ENDPOINT_URL_ORGANIZATIONS=moto_url,
        AWS_ENDPOINT_URL_SECURITYHUB=moto_url,
        AWS_ENDPOINT_URL_IMAGEBUILDER=images.start(),
    )
    org = boto3.client("organizations", region_name=REGION)
    org.create_organization(FeatureSet="ALL")
    members = [
        org.create_account(Email=f"t{i}@example.invalid", AccountName=f"t{i}")["CreateAccountStatus"]["AccountId"]
        for i in range(2)
    ]
    accounts = [MOTO_ACCOUNT, *members]
    for account in accounts:
        for region in (REGION, "eu-west-1"):
            images.add(region, _config("public-ami.json", f"pub-{account[-4:]}-{region}"), account=account)
    try:
        _organization_scan_and_a_deletion(images, members, scan)
    finally:
        images.stop()


def _organization_scan_and_a_deletion(images, members, scan):
    from moto.securityhub.models import securityhub_backends

    run = scan("--organization", "--role-name", "ib-audit", "--region", f"{REGION},eu-west-1")
    assert run.code == 1 and run.report["errors"] == [], run.err
    expected = {}
    targets = {t["id"]: t["origin"] for t in run.report["targets"]}
    for f in run.report["findings"]:
        origin = targets[f["target"]]
        expected.setdefault((origin["account"], origin["region"]), set()).add(f["fingerprint"])
    assert len(expected) == 6
    for (account, region), ids in expected.items():
        held = [f.as_dict() for f in securityhub_backends[account][region].findings]
        assert {f["Id"] for f in held} == ids, (account, region)
        assert {f["AwsAccountId"] for f in held} == {account}
        assert {f["ProductArn"] for f in held} == {f"arn:aws:securityhub:{region}:{account}:product/{account}/default"}
        assert {f["Resources"][0]["Region"] for f in held} == {region}

    # A member account's configuration is deleted: archived in that account's own hub only.
    gone = images.configs[(members[0], REGION)]
    arn = next(iter(gone))
    gone.clear()
    run = scan("--organization", "--role-name", "ib-audit", "--region", f"{REGION},eu-west-1")
    assert run.code == 1 and run.report["errors"] == [], run.err
    for (account, region), ids in expected.items():
        held = {f.as_dict()["Id"]: f.as_dict() for f in securityhub_backends[account][region].findings}
        state = "ARCHIVED" if (account, region) == (members[0], REGION) else "ACTIVE"
        assert {fid: f["RecordState"] for fid, f in held.items()} == dict.fromkeys(ids, state), (account, region)
    assert run.report["sinks"]["security-hub"]["deleted"] == len(expected[(members[0], REGION)])
    assert arn not in {t["id"] for t in run.report["targets"]}


# -- the local Security Hub endpoint -----------------------------------------------------


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """Two configurations in us-east-1 (one public) and one in eu-west-1, and a hub."""
    images = ImageBuilderServer(ImageBuilderFaults(page_size=100))
    arns = {
        "public": images.add(REGION, _config("public-ami.json", "public")),
        "good": images.add(REGION, _config("compliant-baseline.json", "good")),
        "west": images.add("eu-west-1", _config("public-ami.json", "west")),
    }
    server = SecurityHubServer()
    _env(
        monkeypatch, tmp_path, AWS_ENDPOINT_URL_IMAGEBUILDER=images.start(), AWS_ENDPOINT_URL_SECURITYHUB=server.start()
    )
    yield {"images": images, "server": server, "arns": arns}
    server.stop()
    images.stop()


def _held(server, region=REGION) -> dict[str, dict]:
    return {f["Id"]: f for f in server.stored(ACCOUNT, region)}


def test_lifecycle_with_workflow_as_security_hub_keeps_it(hub, scan):
    server, images, arns = hub["server"], hub["images"], hub["arns"]
    first = scan("--region", REGION)
    assert first.code == 1 and first.report["errors"] == []
    held = _held(server)
    assert set(held) == first.fingerprints()
    created = {fid: f["CreatedAt"] for fid, f in held.items()}

    second = scan("--region", REGION)
    assert set(_held(server)) == second.fingerprints() == first.fingerprints()
    assert all(_held(server)[fid]["CreatedAt"] == created[fid] for fid in created)

    _fix_public(images, ACCOUNT, arns["public"])
    scan("--region", REGION)
    (fixed_id,) = first.fingerprints("IBD002")
    fixed = _held(server)[fixed_id]
    assert (fixed["RecordState"], fixed["Compliance"]["Status"], fixed["Workflow"]["Status"]) == (
        "ARCHIVED",
        "PASSED",
        "RESOLVED",
    )
    assert fixed["FindingProviderFields"]["Severity"] == {"Label": "INFORMATIONAL", "Original": "CRITICAL"}
    assert fixed["CreatedAt"] == created[fixed_id]
    # Every request the sink made passed botocore's model (the server answers 400 otherwise).
    assert server.statuses[400] == 0

    # Broken again: the same finding comes back ACTIVE and FAILED, its workflow reopened.
    config = images.configs[(ACCOUNT, REGION)][arns["public"]]
    config["distributions"][0]["amiDistributionConfiguration"]["launchPermission"] = {"userGroups": ["all"]}
    scan("--region", REGION)
    back = _held(server)[fixed_id]
    assert (back["RecordState"], back["Compliance"]["Status"], back["Workflow"]["Status"]) == (
        "ACTIVE",
        "FAILED",
        "NEW",
    )


def test_a_hub_whose_findings_are_all_fixed_is_still_archived(hub, scan):
    """Prowler #2190: a region with no finding left was skipped, its old findings stayed active."""
    server, images, arns = hub["server"], hub["images"], hub["arns"]
    first = scan("--region", "eu-west-1")
    assert len(_held(server, "eu-west-1")) == 2
    config = images.configs[(ACCOUNT, "eu-west-1")][arns["west"]]
    config["distributions"][0]["amiDistributionConfiguration"]["launchPermission"] = {"userIds": [ACCOUNT]}
    config["distributions"][0]["amiDistributionConfiguration"]["name"] = "west-{{ imagebuilder:buildDate }}"
    second = scan("--region", "eu-west-1")
    assert second.code == 0 and second.report["findings"] == []
    assert {fid: (f["RecordState"], f["Compliance"]["Status"]) for fid, f in _held(server, "eu-west-1").items()} == (
        dict.fromkeys(first.fingerprints(), ("ARCHIVED", "PASSED"))
    )
    assert second.report["sinks"]["security-hub"]["archived"] == 2


def test_configurations_and_rules_not_audited_are_left_untouched(hub, scan):
    server, images, arns = hub["server"], hub["images"], hub["arns"]
    first = scan("--region", REGION)
    before = copy.deepcopy(_held(server))
    # The public configuration cannot be read now, and is fixed meanwhile: unknown, untouched.
    _fix_public(images, ACCOUNT, arns["public"])
    images.faults.forbidden_arns.add(arns["public"])
    second = scan("--region", REGION)
    assert second.code == 2
    assert _held(server) == before
    # Readable again, but IBD002 is not selected: its finding is not shown to be fixed.
    images.faults.forbidden_arns.clear()
    third = scan("--region", REGION, "--select", "IBD009")
    assert third.code == 1
    (public_id,) = first.fingerprints("IBD002")
    assert _held(server)[public_id] == before[public_id]
    # Another region's hub is not touched by a scan of this one.
    scan("--region", "eu-west-1")
    west = _held(server, "eu-west-1")
    scan("--region", REGION)
    assert _held(server, "eu-west-1") == west


def _states(server, region=REGION) -> dict[str, tuple[str, str]]:
    return {fid: (f["RecordState"], f["Compliance"]["Status"]) for fid, f in _held(server, region).items()}


def _of(run: Run, arn: str) -> set[str]:
    return {f["fingerprint"] for f in run.report["findings"] if f["target"] == arn}


def test_findings_of_a_deleted_configuration_are_archived_as_not_available(hub, scan):
    """Security Hub User Guide, "Evaluating compliance status and control status": a control
    finding whose resource is deleted becomes NOT_AVAILABLE and is archived at once."""
    server, images, arns = hub["server"], hub["images"], hub["arns"]
    first = scan("--region", f"{REGION},eu-west-1")
    public, west = _of(first, arns["public"]), _of(first, arns["west"])
    assert public and west and first.report["errors"] == []
    severity = {fid: f["FindingProviderFields"]["Severity"] for fid, f in _held(server).items()}
    # public is deleted; west was the only configuration of eu-west-1.
    del images.configs[(ACCOUNT, REGION)][arns["public"]]
    del images.configs[(ACCOUNT, "eu-west-1")][arns["west"]]
    second = scan("--region", f"{REGION},eu-west-1")
    assert second.code == 0 and second.report["errors"] == [], second.err
    assert _states(server) == {
        **dict.fromkeys(public, ("ARCHIVED", "NOT_AVAILABLE")),
        **dict.fromkeys(_of(second, arns["good"]), ("ACTIVE", "FAILED")),
    }
    assert _states(server, "eu-west-1") == dict.fromkeys(west, ("ARCHIVED", "NOT_AVAILABLE"))
    held = _held(server)
    for fid in public:  # not claimed fixed: the severity stays, the reason is recorded
        assert held[fid]["FindingProviderFields"]["Severity"] == severity[fid]
        assert held[fid]["ProductFields"]["ib-audit/Archived"].startswith(
            "the distribution configuration no longer exists (not listed on "
        )
    summary = second.report["sinks"]["security-hub"]
    assert (summary["archived"], summary["deleted"]) == (0, len(public) + len(west))
    assert summary["pairs"] == [f"{ACCOUNT}/eu-west-1", f"{ACCOUNT}/{REGION}"]
    assert server.statuses[400] == 0


def test_deleted_configurations_are_left_alone_unless_their_region_was_listed_completely(hub, scan):
    from auditor.sources.org import in_shard

    server, images, arns = hub["server"], hub["images"], hub["arns"]
    first = scan("--region", REGION)
    before = _states(server)
    del images.configs[(ACCOUNT, REGION)][arns["public"]]
    # The listing fails.
    images.faults.forbidden_regions.add(REGION)
    assert scan("--region", REGION).code == 2
    assert _states(server) == before
    images.faults.forbidden_regions.clear()
    # The listing skips a summary it cannot read: that could have been the configuration.
    images.faults.hostile_lists[REGION] = "no-arn"
    assert scan("--region", REGION).code == 2
    assert _states(server) == before
    images.faults.hostile_lists.clear()
    # Only named configurations are read: nothing is listed.
    assert scan("--arn", arns["good"]).code == 0
    assert _states(server) == before
    # Another shard's region.
    (other,) = [k for k in (1, 2) if not in_shard("self", REGION, (k, 2))]
    scan("--region", REGION, "--shard", f"{other}/2")
    assert _states(server) == before
    # Listed completely at last: archived.
    last = scan("--region", REGION)
    assert last.report["errors"] == []
    assert _states(server) == {
        **dict.fromkeys(_of(first, arns["public"]), ("ARCHIVED", "NOT_AVAILABLE")),
        **dict.fromkeys(last.fingerprints(), ("ACTIVE", "FAILED")),
    }


def test_a_listed_region_without_configurations_or_security_hub_is_no_error(hub, scan):
    server = hub["server"]
    server.faults.disabled.add((ACCOUNT, "ap-southeast-2"))
    run = scan("--region", f"{REGION},ap-southeast-2")
    assert run.code == 1 and run.report["errors"] == [], run.err
    asked = {(r["operation"], r["region"]) for r in server.requests}
    assert ("GetFindings", "ap-southeast-2") in asked  # it may have held findings of deleted configurations
    assert run.report["sinks"]["security-hub"]["pairs"] == [f"{ACCOUNT}/{REGION}"]


def test_failed_findings_are_errors_naming_finding_rule_and_configuration(hub, scan):
    server, arns = hub["server"], hub["arns"]
    probe = scan("--region", REGION)
    (rejected,) = probe.fingerprints("IBD009")
    server.findings.clear()
    server.faults.reject_ids[rejected] = ("InvalidInput", "Finding does not adhere to Amazon Finding Format.")
    run = scan("--region", REGION)
    assert run.code == 2
    assert run.report["errors"] == [
        {
            "input": f"security-hub {ACCOUNT}/{REGION}",
            "message": f"finding {rejected} (IBD009 on {arns['public']}) rejected: "
            "InvalidInput: Finding does not adhere to Amazon Finding Format.",
        }
    ]
    assert set(_held(server)) == run.fingerprints() - {rejected}
    assert run.report["sinks"]["security-hub"]["rejected"] == 1


def test_throttling_is_retried_and_batches_hold_at_most_100(hub, scan):
    server, images = hub["server"], hub["images"]
    for i in range(150):
        images.add(REGION, _config("public-ami.json", f"bulk-{i:03}"))
    server.faults.throttle_first = 4
    server.faults.rate_limit, server.faults.burst = 20.0, 3
    run = scan("--region", REGION)
    assert run.code == 1 and run.report["errors"] == [], run.err
    assert set(_held(server)) == run.fingerprints()
    assert len(run.fingerprints()) == 302
    imports = [r for r in server.requests if r["operation"] == "BatchImportFindings"]
    assert max(len(r["body"]["Findings"]) for r in imports) == 100
    accepted = sorted(len(r["body"]["Findings"]) for r in imports if r["status"] == 200)
    assert accepted == [2, 100, 100, 100]  # each batch once, throttled attempts retried
    assert server.statuses[429] >= 4


def test_suppressions_sync_through_batch_update_findings(hub, scan):
    server, images, arns = hub["server"], hub["images"], hub["arns"]
    first = scan("--region", REGION)
    (name_id,) = first.fingerprints("IBD009")
    (public_id,) = first.fingerprints("IBD002")
    # A person suppressed the public finding in Security Hub: ib-audit leaves that alone.
    server.findings[(ACCOUNT, REGION)][(_held(server)[public_id]["ProductArn"], public_id)]["Workflow"] = {
        "Status": "SUPPRESSED"
    }
    config = images.configs[(ACCOUNT, REGION)][arns["public"]]
    config["tags"] = {**config.get("tags", {}), "ib-audit:ignore": "IBD009:name fixed by the pipeline (PLAT-7)"}
    second = scan("--region", REGION)
    assert second.report["errors"] == []
    (update,) = [r["body"] for r in server.requests if r["operation"] == "BatchUpdateFindings"]
    assert update == {
        "FindingIdentifiers": [{"Id": name_id, "ProductArn": _held(server)[name_id]["ProductArn"]}],
        "Workflow": {"Status": "SUPPRESSED"},
        "Note": {"Text": "Suppressed in ib-audit (tag): name fixed by the pipeline (PLAT-7)", "UpdatedBy": "ib-audit"},
    }
    held = _held(server)
    assert held[name_id]["Workflow"]["Status"] == "SUPPRESSED"
    assert held[name_id]["Compliance"]["Status"] == "FAILED" and held[name_id]["RecordState"] == "ACTIVE"
    assert second.report["sinks"]["security-hub"]["suppressed"] == 1

    del config["tags"]["ib-audit:ignore"]
    third = scan("--region", REGION)
    assert third.report["sinks"]["security-hub"]["reopened"] == 1
    held = _held(server)
    assert held[name_id]["Workflow"]["Status"] == "NEW"
    assert held[public_id]["Workflow"]["Status"] == "SUPPRESSED"  # the person's decision stands
    assert [r["body"]["Workflow"] for r in server.requests if r["operation"] == "BatchUpdateFindings"] == [
        {"Status": "SUPPRESSED"},
        {"Status": "NEW"},
    ]


def test_unprocessed_workflow_updates_are_errors(hub, scan):
    server, images, arns = hub["server"], hub["images"], hub["arns"]
    first = scan("--region", REGION)
    (name_id,) = first.fingerprints("IBD009")
    server.faults.unprocessed_ids[name_id] = ("AccessDenied", "Not allowed to update this finding")
    config = images.configs[(ACCOUNT, REGION)][arns["public"]]
    config["tags"] = {"ib-audit:ignore": "IBD009:accepted"}
    run = scan("--region", REGION)
    assert run.code == 2
    assert run.report["errors"] == [
        {
            "input": f"security-hub {ACCOUNT}/{REGION}",
            "message": f"finding {name_id}: workflow SUPPRESSED not set: AccessDenied: Not allowed to update this finding",
        }
    ]


def test_a_region_without_security_hub_is_an_error_for_that_hub_only(hub, scan):
    server = hub["server"]
    server.faults.disabled.add((ACCOUNT, "eu-west-1"))
    run = scan("--region", f"{REGION},eu-west-1")
    assert run.code == 2
    assert run.report["errors"] == [
        {
            "input": f"security-hub {ACCOUNT}/eu-west-1",
            "message": "cannot read earlier findings (GetFindings): InvalidAccessException: "
            f"Account {ACCOUNT} is not subscribed to AWS Security Hub",
        }
    ]
    assert set(_held(server)) == {f["fingerprint"] for f in run.report["findings"] if "us-east-1" in f["target"]}
    assert server.stored(ACCOUNT, "eu-west-1") == []


def test_an_aggregation_region_and_other_products_do_not_widen_what_is_touched(hub, scan):
    server, images, arns = hub["server"], hub["images"], hub["arns"]
    server.aggregator = REGION
    scan("--region", "eu-west-1")
    west = _held(server, "eu-west-1")
    assert west
    other_product = {
        "SchemaVersion": "2018-10-08",
        "Id": "other-product-1",
        "ProductArn": f"arn:aws:securityhub:{REGION}::product/acme/scanner",
        "GeneratorId": "ib-audit/IBD002",  # even a look-alike generator in another product
        "AwsAccountId": ACCOUNT,
        "CreatedAt": "2026-01-01T00:00:00.000Z",
        "UpdatedAt": "2026-01-01T00:00:00.000Z",
        "Title": "t",
        "Description": "d",
        "Resources": [{"Type": "Other", "Id": arns["public"]}],
    }
    server.put(ACCOUNT, REGION, other_product)
    _fix_public(images, ACCOUNT, arns["public"])
    run = scan("--region", REGION)
    assert run.report["errors"] == []
    assert _held(server, "eu-west-1") == west  # seen through the aggregator, never touched
    assert _held(server)["other-product-1"]["RecordState"] == "ACTIVE"


def test_security_hub_is_for_live_scans(capsys):
    assert main(["scan", "examples/public-ami.json", "--security-hub"]) == 2
    assert capsys.readouterr().err == (
        "ib-audit: error: --security-hub sends live findings (--aws, --arn, --organization...); "
        "for files, write -f asff=FILE with --asff-account/--asff-region and import it\n"
    )


def test_the_nightly_example_workflow_runs_a_command_ib_audit_accepts():
    import re
    import shlex

    import yaml

    from auditor.cli import build_parser

    from conftest import REPO

    workflow = yaml.safe_load((REPO / "examples" / "ci" / "github-nightly-security-hub.yml").read_text())
    (command,) = [s["run"] for s in workflow["jobs"]["security-hub"]["steps"] if "ib-audit scan" in s.get("run", "")]
    command = re.sub(r"\$\{\{ matrix.shard \}\}", "2", command).replace("$GITHUB_STEP_SUMMARY", "summary.md")
    argv = shlex.split(command)
    assert argv[:2] == ["ib-audit", "scan"]
    args = build_parser().parse_args(argv[1:])
    assert args.security_hub and args.organization and args.shard == "2/4" and args.role_name
    assert not args.paths  # live only, which --security-hub requires
    for step in workflow["jobs"]["security-hub"]["steps"]:
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]  # pinned by SHA


def _readme_policy(sid: str) -> dict:
    """The README's IAM policy block that holds the statement ``sid``."""
    import re

    from conftest import REPO

    for block in re.findall(
        r"```json\n(\{\n  \"Version\": \"2012-10-17\",.*?)```", (REPO / "README.md").read_text(), re.S
    ):
        policy = json.loads(block)
        if any(s.get("Sid") == sid for s in policy["Statement"]):
            return policy
    raise AssertionError(f"no README policy with statement {sid}")


def _iam_match(pattern: str, value: str) -> bool:
    """IAM's wildcard matching in Action and Resource: ``*`` any run of characters, ``?`` one."""
    import re

    return (
        re.fullmatch("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), value)
        is not None
    )


def _allowed(policy: dict, action: str, resource: str) -> bool:
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if (
            statement["Effect"] == "Allow"
            and any(_iam_match(a, action) for a in actions)
            and any(_iam_match(r, resource) for r in resources)
        ):
            return True
    return False


def test_the_readme_policy_allows_every_call_the_sink_makes(hub, scan):
    """Service Authorization Reference, "Actions, resources, and condition keys for AWS Security
    Hub": BatchImportFindings requires the resource type ``product``,
    ``arn:${Partition}:securityhub:${Region}:${Account}:product/${Company}/${ProductId}``; the
    default product of a custom integration is ``product/<account-id>/default``. GetFindings and
    BatchUpdateFindings take ``*``."""
    from auditor.reports.asff import Placement

    server, images, arns = hub["server"], hub["images"], hub["arns"]
    policy = _readme_policy("IbAuditImportFindings")
    scan("--region", REGION)
    config = images.configs[(ACCOUNT, REGION)][arns["public"]]
    config["tags"] = {"ib-audit:ignore": "IBD009:accepted"}  # so BatchUpdateFindings is called too
    scan("--region", REGION)
    calls = [(r["operation"], r["body"]) for r in server.requests if r["status"] == 200]
    assert {op for op, _ in calls} == {"GetFindings", "BatchImportFindings", "BatchUpdateFindings"}
    for operation, body in calls:
        products = [f["ProductArn"] for f in body.get("Findings", [])] or ["*"]
        for product in products:
            assert _allowed(policy, f"securityhub:{operation}", product), (operation, product)
    # The default product in every partition, and no other product.
    for where in (Placement(ACCOUNT, "cn-north-1", "aws-cn"), Placement(ACCOUNT, "us-gov-west-1", "aws-us-gov")):
        assert _allowed(policy, "securityhub:BatchImportFindings", where.product_arn)
    assert not _allowed(
        policy, "securityhub:BatchImportFindings", f"arn:aws:securityhub:{REGION}::product/aws/guardduty"
    )
    assert not _allowed(
        policy, "securityhub:BatchImportFindings", f"arn:aws:securityhub:{REGION}:{ACCOUNT}:hub/default"
    )
