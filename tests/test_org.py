"""Organization-wide scans: real boto3 clients against moto (STS, Organizations) in
server mode and the local Image Builder endpoint, which answers per account: it reads
the access key of the assumed-role credentials and asks moto whose they are."""

from __future__ import annotations

import json
import urllib.request

import boto3
import pytest
from imagebuilder_server import ImageBuilderServer

from auditor.cli import main

from conftest import EXAMPLES

REGIONS = ("us-east-1", "eu-west-1")
MANAGEMENT = "123456789012"  # moto's default account


@pytest.fixture(scope="module")
def moto_url():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _account_of_access_key(key: str) -> str | None:
    from moto.sts.models import sts_backends

    for account, partitions in list(sts_backends.items()):
        for role in partitions["aws"].assumed_roles:
            if role.access_key_id == key:
                return account
    return None


@pytest.fixture
def organization(moto_url, monkeypatch, tmp_path):
    """An Organization of four accounts, one without the role; three configurations
    per account and region behind the local Image Builder endpoint."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "AKIDMANAGEMENT",
        "AWS_SECRET_ACCESS_KEY": "management-secret",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_STS": moto_url,
        "AWS_ENDPOINT_URL_ORGANIZATIONS": moto_url,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    org = boto3.client("organizations", region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    members = [
        org.create_account(Email=f"team{i}@example.invalid", AccountName=f"team{i}")["CreateAccountStatus"]["AccountId"]
        for i in range(3)
    ]
    no_role = members[2]

    # moto lets any role be assumed; make this account's role missing, as AWS would.
    from moto.sts.exceptions import STSClientError
    from moto.sts.models import STSBackend

    original = STSBackend.assume_role

    def assume_role(self, **kwargs):
        if f":{no_role}:" in kwargs["role_arn"]:
            raise STSClientError("AccessDenied", f"Not authorized to perform sts:AssumeRole on {kwargs['role_arn']}")
        return original(self, **kwargs)

    monkeypatch.setattr(STSBackend, "assume_role", assume_role)

    server = ImageBuilderServer()
    server.resolve_account = _account_of_access_key
    public = json.loads((EXAMPLES / "public-ami.json").read_text())["distributionConfiguration"]
    compliant = json.loads((EXAMPLES / "compliant-baseline.json").read_text())["distributionConfiguration"]
    for account in [MANAGEMENT, *members]:
        for region in REGIONS:
            for i, template in enumerate((public, compliant, public)):
                config = {k: v for k, v in template.items() if k != "arn"}
                server.add(region, {**config, "name": f"cfg{i}-{account[-4:]}-{region}"}, account=account)
    monkeypatch.setenv("AWS_ENDPOINT_URL_IMAGEBUILDER", server.start())
    yield {"server": server, "members": members, "no_role": no_role, "accounts": [MANAGEMENT, *members]}
    server.stop()


def _scan(tmp_path, capsys, name, *args):
    out = tmp_path / f"{name}.json"
    code = main(["scan", *args, "--region", ",".join(REGIONS), "-f", f"json={out}", "-f", "text"])
    capsys.readouterr()
    return code, json.loads(out.read_text())


def test_organization_scan_covers_every_account_once(organization, tmp_path, capsys):
    code, report = _scan(tmp_path, capsys, "org", "--organization", "--role-name", "ib-audit")
    server, no_role = organization["server"], organization["no_role"]
    expected = sorted(arn for (account, _), configs in server.configs.items() if account != no_role for arn in configs)
    audited = sorted(t["id"] for t in report["targets"] if t["status"] == "audited")
    assert audited == expected  # every (account, region, configuration) once
    assert len(audited) == 3 * len(REGIONS) * 3
    errors = [(t["id"], t["error"]) for t in report["targets"] if t["status"] == "error"]
    assert len(errors) == 1 and errors[0][0] == f"account {no_role}"
    assert errors[0][1].startswith("cannot assume role ib-audit: An error occurred (AccessDenied)")
    assert code == 2
    by_account = {t["origin"]["account"] for t in report["targets"] if t["status"] == "audited"}
    assert by_account == set(organization["accounts"]) - {no_role}
    assert report["coverage"] == {
        "shard": None,
        "pairs": sorted(f"{a}/{r}" for a in organization["accounts"] for r in REGIONS),
    }


def test_one_client_per_account_and_region_and_one_sts_client_while_throttled(
    organization, tmp_path, capsys, monkeypatch
):
    """Clients are shared by the scan's threads: an Image Builder client per (account,
    region) and one STS client for every AssumeRole, never one per thread or per account;
    throttling (429 CallRateLimitExceededException) is still retried on the shared clients."""
    import botocore.session

    built = []
    create_client = botocore.session.Session.create_client

    def counting(session, service_name, *args, **kwargs):
        client = create_client(session, service_name, *args, **kwargs)
        built.append((id(session), service_name, client.meta.region_name))
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", counting)
    server, no_role = organization["server"], organization["no_role"]
    server.faults.throttle_every = 4
    code, report = _scan(tmp_path, capsys, "org", "--organization", "--role-name", "ib-audit", "--max-workers", "16")
    expected = sorted(arn for (account, _), configs in server.configs.items() if account != no_role for arn in configs)
    assert sorted(t["id"] for t in report["targets"] if t["status"] == "audited") == expected
    assert [t["id"] for t in report["targets"] if t["status"] == "error"] == [f"account {no_role}"]
    assert code == 2
    assert server.status_counts[429] > 0
    imagebuilder = [(session, region) for session, service, region in built if service == "imagebuilder"]
    assert len(imagebuilder) == len(set(imagebuilder)) == (len(organization["accounts"]) - 1) * len(REGIONS)
    sts = [session for session, service, _ in built if service == "sts"]
    assert len(sts) == len(set(sts))  # every role of a session assumed through one client


def test_accounts_from_flags_and_file(organization, tmp_path, capsys):
    members = organization["members"]
    accounts_file = tmp_path / "accounts.txt"
    accounts_file.write_text(f"# workload accounts\n{members[1]}\n\nnot-an-account\n")
    code, report = _scan(
        tmp_path,
        capsys,
        "list",
        "--accounts",
        members[0],
        "--accounts-file",
        str(accounts_file),
        "--role-name",
        "ib-audit",
    )
    assert {t["origin"]["account"] for t in report["targets"]} == {members[0], members[1]}
    assert report["errors"] == [{"input": "account not-an-account", "message": "not a 12-digit AWS account id"}]
    assert code == 2


def test_shards_merged_equal_an_unsharded_scan_and_gaps_are_detected(organization, tmp_path, capsys):
    base = ["--organization", "--role-name", "ib-audit"]
    _scan(tmp_path, capsys, "full", *base)
    for k in (1, 2, 3):
        _scan(tmp_path, capsys, f"shard{k}", *base, "--shard", f"{k}/3")
    shard_reports = [json.loads((tmp_path / f"shard{k}.json").read_text()) for k in (1, 2, 3)]
    covered = [set(r["coverage"]["pairs"]) for r in shard_reports]
    # Exactly once: disjoint, and together every pair. (moto's account ids are random,
    # so with 8 pairs a shard may be empty; that is allowed, and still recorded.)
    full_pairs = set(json.loads((tmp_path / "full.json").read_text())["coverage"]["pairs"])
    assert covered[0] | covered[1] | covered[2] == full_pairs
    assert sum(len(c) for c in covered) == len(full_pairs)
    assert [r["coverage"]["shard"] for r in shard_reports] == ["1/3", "2/3", "3/3"]

    code = main(["merge", *(str(tmp_path / f"shard{k}.json") for k in (1, 2, 3)), "-f", f"json={tmp_path}/merged.json"])
    capsys.readouterr()
    merged = json.loads((tmp_path / "merged.json").read_text())
    full = json.loads((tmp_path / "full.json").read_text())

    def key(report):
        return sorted((f["rule_id"], f["target"], f["path"], f["fingerprint"]) for f in report["findings"])

    assert key(merged) == key(full)
    assert sorted((t["id"], t["status"]) for t in merged["targets"]) == sorted(
        (t["id"], t["status"]) for t in full["targets"]
    )
    assert merged["coverage"]["pairs"] == full["coverage"]["pairs"]
    assert code == 2  # the account without the role is still an error after merging

    main(["merge", str(tmp_path / "shard1.json"), str(tmp_path / "shard3.json"), "-f", f"json={tmp_path}/gap.json"])
    main(["merge", *(str(tmp_path / f"shard{k}.json") for k in (1, 2, 3, 2)), "-f", f"json={tmp_path}/dup.json"])
    capsys.readouterr()
    gap = json.loads((tmp_path / "gap.json").read_text())
    dup = json.loads((tmp_path / "dup.json").read_text())
    assert {"input": "merge", "message": "shard 2/3 is missing: its accounts and regions were not scanned"} in gap[
        "errors"
    ]
    assert any(e["message"] == f"shard 2/3 was already merged from {tmp_path}/shard2.json" for e in dup["errors"])
    assert key(dup) == key(full)  # nothing counted twice


def test_sarif_one_run_per_account_and_region(organization, tmp_path, capsys):
    from sarif_checks import multitool_problems, schema_errors

    out = tmp_path / "org.sarif"
    code = main(
        [
            "scan",
            "--organization",
            "--role-name",
            "ib-audit",
            "--region",
            ",".join(REGIONS),
            "--sarif-split",
            "account-region",
            "--sarif-category",
            "nightly",
            "-f",
            f"sarif={out}",
        ]
    )
    capsys.readouterr()
    assert code == 2
    log = json.loads(out.read_text())
    categories = [run["automationDetails"]["id"] for run in log["runs"]]
    audited = sorted(set(organization["accounts"]) - {organization["no_role"]})
    expected = sorted(
        [f"nightly/{a}/{r}/" for a in audited for r in REGIONS] + [f"nightly/{organization['no_role']}/all/"]
    )
    assert sorted(categories) == expected
    for run in log["runs"]:
        account, region = run["automationDetails"]["id"].split("/")[1:3]
        uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run.get("results", [])}
        assert all(uri.startswith(f"aws/{account}/{region}/") for uri in uris)
    failing = next(r for r in log["runs"] if r["automationDetails"]["id"] == f"nightly/{organization['no_role']}/all/")
    assert failing["invocations"][0]["executionSuccessful"] is False
    assert schema_errors(log) == []
    assert multitool_problems(out, tmp_path) == []
