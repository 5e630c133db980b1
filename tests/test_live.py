"""Live scan: a real boto3 client against the local Image Builder endpoint.

Every listed ARN must end as an audited target or an error with its reason, findings
must equal those of scanning the same configurations as JSON files, and this must
hold in every AWS_RETRY_MODE, with throttling and faults switched on.
"""

from __future__ import annotations

import json
import subprocess
import sys

import boto3
import botocore.config
import botocore.exceptions
import pytest
from imagebuilder_server import Faults, ImageBuilderServer
from sarif_checks import multitool_problems, schema_errors

from auditor.cli import main
from auditor.sources import aws

from conftest import EXAMPLES, REPO

REGIONS = ("us-east-1", "eu-west-1")
ACCOUNT = "111122223333"


def _example_configs():
    """(name, config) for every example, in API response shape, without its ARN."""
    out = []
    for path in sorted(EXAMPLES.glob("*.json")):
        doc = json.loads(path.read_text())
        docs = doc if isinstance(doc, list) else [doc]
        for d in docs:
            config = d.get("distributionConfiguration", d)
            config = {k: v for k, v in config.items() if k not in ("arn", "clientToken")}
            config.setdefault("timeoutMinutes", 720)
            out.append(config)
    return out


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Dummy credentials and no shared config: nothing may reach real AWS."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLOCALTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local-secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return monkeypatch


@pytest.fixture
def endpoint(aws_env):
    servers = []

    def start(faults: Faults | None = None) -> ImageBuilderServer:
        server = ImageBuilderServer(faults)
        for region in REGIONS:
            for config in _example_configs():
                server.add(region, {**config, "name": f"{config['name']}-{region}"})
        url = server.start()
        aws_env.setenv("AWS_ENDPOINT_URL_IMAGEBUILDER", url)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _run(capsys, tmp_path, *args):
    out = tmp_path / "live.json"
    code = main(["scan", *args, "-f", f"json={out}", "-f", "text"])
    captured = capsys.readouterr()
    return code, json.loads(out.read_text()), captured


def _file_findings(server, tmp_path, capsys, skip=()):
    """Scan the server's configurations saved as get-distribution-configuration JSON."""
    folder = tmp_path / "as-files"
    folder.mkdir(exist_ok=True)
    for (_, region), configs in server.configs.items():
        for arn, config in configs.items():
            if arn in skip:
                continue
            (folder / f"{region}-{config['name']}.json").write_text(json.dumps({"distributionConfiguration": config}))
    _, report, _ = _run(capsys, tmp_path, str(folder), "--config", str(EXAMPLES / "ib-audit.toml"))
    by_target = {t["id"]: t["origin"]["arn"] for t in report["targets"]}
    return sorted((by_target[f["target"]], f["rule_id"], f["path"], f["message"]) for f in report["findings"])


@pytest.mark.parametrize("retry_mode", ["legacy", "standard", "adaptive"])
def test_every_arn_accounted_for_under_faults(endpoint, aws_env, capsys, tmp_path, retry_mode):
    aws_env.setenv("AWS_RETRY_MODE", retry_mode)
    server = endpoint(Faults(page_size=2, throttle_first=3, throttle_every=7, server_error_first=2))
    all_arns = sorted(arn for configs in server.configs.values() for arn in configs)
    forbidden, malformed = all_arns[0], all_arns[5]
    server.faults.forbidden_arns = {forbidden}
    server.faults.malformed_arns = {malformed}

    code, report, captured = _run(
        capsys, tmp_path, "--aws", "--region", "us-east-1,eu-west-1", "--config", str(EXAMPLES / "ib-audit.toml")
    )
    assert code == 2
    statuses = {t["id"]: t["status"] for t in report["targets"]}
    assert sorted(statuses) == all_arns  # every ARN exactly once
    assert {arn for arn, s in statuses.items() if s == "error"} == {forbidden, malformed}
    errors = {e["input"]: e["message"] for e in report["errors"]}
    assert errors[forbidden] == f"access denied (ForbiddenException): User is not authorized to access {forbidden}"
    assert errors[malformed] == "bad response body: not valid JSON (truncated?)"
    assert len(errors) == 2
    live = sorted((f["target"], f["rule_id"], f["path"], f["message"]) for f in report["findings"])
    # The API never returns members it does not define (botocore drops them too), so
    # IBD016 cannot fire on a live configuration; every other finding must match.
    files = [f for f in _file_findings(server, tmp_path, capsys, skip={forbidden, malformed}) if f[1] != "IBD016"]
    assert live == files
    assert server.status_counts[429] >= 3 and server.status_counts[500] == 2
    assert "Traceback" not in captured.err


def test_clean_scan_of_one_region_and_single_arns(endpoint, capsys, tmp_path):
    server = endpoint()
    code, report, _ = _run(capsys, tmp_path, "--aws", "--region", "eu-west-1")
    assert code == 1
    assert {t["origin"]["region"] for t in report["targets"]} == {"eu-west-1"}
    assert all(t["status"] == "audited" and t["origin"]["account"] == ACCOUNT for t in report["targets"])
    assert len(report["targets"]) == len(server.configs[(ACCOUNT, "eu-west-1")])
    public = next(arn for arn in server.configs[(ACCOUNT, "us-east-1")] if "community-image" in arn)
    code, report, _ = _run(capsys, tmp_path, "--arn", public)
    assert [(f["rule_id"], f["location"]) for f in report["findings"]] == [
        ("IBD002", {"arn": public}),
        ("IBD009", {"arn": public}),
    ]
    assert server.calls["ListDistributionConfigurations"] == 1  # one page; --arn does not list


def test_botocore_alone_does_not_retry_the_429(endpoint, aws_env):
    """Why ib-audit retries itself: botocore's modes give up on CallRateLimitExceeded."""
    server = endpoint(Faults(throttle_first=1))
    for mode in ("standard", "adaptive"):
        server.calls.clear()
        server.faults.throttle_first = sum(server.status_counts.values()) + 1
        client = boto3.session.Session().client(
            "imagebuilder", region_name="us-east-1", config=botocore.config.Config(retries={"mode": mode})
        )
        with pytest.raises(botocore.exceptions.ClientError) as info:
            client.list_distribution_configurations()
        assert info.value.response["Error"]["Code"] == "CallRateLimitExceededException"
        assert server.calls["ListDistributionConfigurations"] == 1, mode


def test_retries_exhausted_is_an_error_with_its_reason(endpoint):
    server = endpoint(Faults(throttle_every=1))
    result = aws.fetch(aws.AwsOptions(regions=["us-east-1"], max_attempts=3, base_delay=0.001, max_delay=0.002))
    (target,) = result.targets
    assert target.id == "region us-east-1"
    assert target.error.startswith("throttled (CallRateLimitExceededException); gave up after 3 attempts in ")
    assert server.calls["ListDistributionConfigurations"] == 3


def test_region_listing_denied_is_an_error_and_other_regions_are_audited(endpoint, capsys, tmp_path):
    server = endpoint(Faults(forbidden_regions={"eu-west-1"}))
    code, report, captured = _run(capsys, tmp_path, "--aws", "--region", "us-east-1", "--region", "eu-west-1")
    assert code == 2
    assert report["errors"] == [
        {
            "input": "region eu-west-1",
            "message": "access denied (ForbiddenException): You are not authorized to perform this operation",
        }
    ]
    audited = [t for t in report["targets"] if t["status"] == "audited"]
    assert len(audited) == len(server.configs[(ACCOUNT, "us-east-1")])
    assert "error: region eu-west-1: access denied" in captured.out


def test_unreachable_endpoint(aws_env):
    aws_env.setenv("AWS_ENDPOINT_URL_IMAGEBUILDER", "http://127.0.0.1:9")
    result = aws.fetch(aws.AwsOptions(regions=["us-east-1"], max_attempts=2, base_delay=0.001, max_delay=0.002))
    (target,) = result.targets
    assert target.error.startswith('connection error: Could not connect to the endpoint URL: "http://127.0.0.1:9/')
    assert target.error.endswith("gave up after 2 attempts in " + target.error.rsplit("in ", 1)[1])


def _cli(*args, env):
    return subprocess.run(
        [sys.executable, "-P", "-m", "auditor", *args], capture_output=True, text=True, env=env, cwd=EXAMPLES
    )


def test_missing_credentials_and_unknown_region_are_one_line(endpoint, tmp_path):
    import os

    endpoint()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ACCESS") and not k.startswith("AWS_SECRET")}
    proc = _cli("scan", "--aws", env=env)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert [line for line in proc.stdout.splitlines() if line.startswith("error:")] == [
        "error: aws: AWS credentials not found (Unable to locate credentials); "
        "configure a profile, environment variables or a role"
    ]
    # AWS's own endpoint for a region that does not exist: no local endpoint may answer.
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL_IMAGEBUILDER", "AWS_ENDPOINT_URL")}
    proc = _cli("scan", "--aws", "--region", "moon-central-1", env=env)
    assert proc.returncode == 2
    assert [line for line in proc.stdout.splitlines() if line.startswith("error:")] == [
        "error: region moon-central-1: unknown region"
    ]


def test_snapshots_give_file_locations_and_are_stable(endpoint, capsys, tmp_path):
    endpoint()
    snap = tmp_path / "snapshots"
    code, report, _ = _run(capsys, tmp_path, "--aws", "--region", "us-east-1", "--snapshot-dir", str(snap))
    assert code == 1
    public = next(f for f in report["findings"] if f["rule_id"] == "IBD002")
    file = snap / ACCOUNT / "us-east-1" / "community-image-us-east-1.json"
    assert public["location"]["file"] == str(file)
    line = file.read_text().splitlines()[public["location"]["start_line"] - 1]
    assert line.strip() == '"all"'
    before = {p: p.read_bytes() for p in snap.rglob("*.json")}
    _run(capsys, tmp_path, "--aws", "--region", "us-east-1", "--snapshot-dir", str(snap))
    assert {p: p.read_bytes() for p in snap.rglob("*.json")} == before
    # A snapshot is itself a scannable file with the same findings.
    code, again, _ = _run(capsys, tmp_path, str(file))
    assert [(f["rule_id"], f["path"]) for f in again["findings"]] == [
        (f["rule_id"], f["path"]) for f in report["findings"] if f["location"]["file"] == str(file)
    ]


def test_live_sarif_passes_schema_and_multitool(endpoint, tmp_path, capsys, monkeypatch):
    endpoint(Faults(forbidden_arns=set()))
    monkeypatch.chdir(REPO)
    out = tmp_path / "live.sarif"
    code = main(
        ["scan", "--aws", "--region", "us-east-1", "-f", f"sarif={out}", "--sarif-category", f"aws/{ACCOUNT}/us-east-1"]
    )
    capsys.readouterr()
    assert code == 1
    log = json.loads(out.read_text())
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]}
    assert f"aws/{ACCOUNT}/us-east-1/community-image-us-east-1.json" in uris
    assert all(u.startswith(f"aws/{ACCOUNT}/us-east-1/") for u in uris)
    assert schema_errors(log) == []
    assert multitool_problems(out, tmp_path) == []


def test_progress_on_a_tty_only_and_verbose_logs_never_show_credentials(endpoint, aws_env, tmp_path):
    import os
    import pty

    endpoint()
    env = dict(os.environ)
    # stderr on a pseudo-terminal: a progress line appears.
    leader, follower = pty.openpty()
    proc = subprocess.run(
        [sys.executable, "-P", "-m", "auditor", "scan", "--aws", "--region", "us-east-1", "-f", "json=/dev/null"],
        stderr=follower,
        stdout=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    shown = b"".join(chunks).decode()
    assert proc.returncode == 1
    assert "\rib-audit: regions 1/1  configurations" in shown and "errors 0" in shown
    # Not a terminal: no progress line; -v logs calls and retries, never credentials.
    proc = subprocess.run(
        [sys.executable, "-P", "-m", "auditor", "scan", "--aws", "--region", "us-east-1", "-v", "-f", "json=/dev/null"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert "\r" not in proc.stderr
    assert "us-east-1 list_distribution_configurations  (attempt 1)" in proc.stderr
    assert "get_distribution_configuration arn:aws:imagebuilder:us-east-1:" in proc.stderr
    assert "AKIDLOCALTEST" not in proc.stderr and "local-secret" not in proc.stderr
    # --quiet on a terminal: nothing.
    leader, follower = pty.openpty()
    subprocess.run(
        [sys.executable, "-P", "-m", "auditor", "scan", "--aws", "--region", "us-east-1", "-q", "-f", "json=/dev/null"],
        stderr=follower,
        stdout=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
    )
    os.close(follower)
    try:
        quiet = os.read(leader, 65536)
    except OSError:
        quiet = b""
    os.close(leader)
    assert quiet == b""
