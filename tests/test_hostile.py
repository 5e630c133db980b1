"""Hostile input and faults: nothing hangs, nothing passes silently, nothing leaks.

Each class of the threat list is tried as a hostile contributor or a flaky network would:
the CLI runs in a subprocess with a time limit (and, where an input could expand, a
memory limit), or in a thread that must finish within a join timeout. The contract is
always the same: one line naming the input, exit 2, every other input still audited and
every report still written.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import EXAMPLES, skip_or_fail

PUBLIC = EXAMPLES / "public-ami.json"
PUBLIC_POINTER = "/distributions/0/amiDistributionConfiguration/launchPermission/userGroups/0"
MIB = 1 << 20


def line_of(text: str, needle: str, nth: int = 0) -> int:
    """1-based line of the nth line containing ``needle`` (read off the file, not the tool)."""
    return [i for i, line in enumerate(text.splitlines(), 1) if needle in line][nth]


def public_findings(file: str, text: str | None = None) -> list[tuple[str, str, str, int]]:
    """The two findings of the public AMI example: public launch, and an AMI name without a date."""
    text = text or PUBLIC.read_text()
    return [
        ("IBD002", PUBLIC_POINTER, file, line_of(text, '"all"')),
        ("IBD009", "/distributions/0/amiDistributionConfiguration/name", file, line_of(text, '"community-demo"')),
    ]


def _drop_file_permission_override() -> None:
    """Make root obey file modes in the child (drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run(
    argv: list[str],
    cwd: Path,
    *,
    timeout: float = 60,
    memory_mb: int | None = None,
    obey_file_modes: bool = False,
    env: dict | None = None,
) -> subprocess.CompletedProcess:
    """``ib-audit ARGV`` in a subprocess that must end within ``timeout`` seconds."""

    def limits() -> None:
        if memory_mb is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_mb * MIB, memory_mb * MIB))
        if obey_file_modes and os.geteuid() == 0:
            _drop_file_permission_override()

    return subprocess.run(
        [sys.executable, "-m", "auditor", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limits,
        env=env if env is not None else dict(os.environ),
    )


class Scan:
    def __init__(self, proc: subprocess.CompletedProcess, report: dict) -> None:
        self.proc, self.report = proc, report
        self.code, self.out, self.err = proc.returncode, proc.stdout, proc.stderr

    def findings(self) -> list[tuple[str, str, str | None, int | None]]:
        return [
            (f["rule_id"], f["path"], f["location"].get("file"), f["location"].get("start_line"))
            for f in self.report["findings"]
        ]

    def errors(self) -> list[tuple[str, str]]:
        return [(e["input"], e["message"]) for e in self.report["errors"]]

    def audited(self) -> list[str]:
        return sorted(t["id"] for t in self.report["targets"] if t["status"] == "audited")


def scan(*args: str, cwd: Path, out: Path | None = None, **kwargs) -> Scan:
    """``ib-audit scan ARGS`` with a JSON report next to (never inside) the scanned folder."""
    out = out or cwd.parent / f"{cwd.name}-report.json"
    proc = run(["scan", *args, "-f", f"json={out}", "-f", "text"], cwd, **kwargs)
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(out.read_text()) if out.exists() else {}
    return Scan(proc, report)


def within(seconds: float, fn, *args, **kwargs):
    """Run ``fn`` in a thread that must finish within ``seconds``; return its result."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{getattr(fn, '__name__', fn)} did not finish within {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture
def repo(tmp_path) -> Path:
    """A folder to scan holding one public AMI configuration, which must always be found."""
    folder = tmp_path / "repo"
    folder.mkdir()
    shutil.copy(PUBLIC, folder / "public-ami.json")
    return folder


# -- 1. only regular files, bounded reads ------------------------------------------------------
def test_fifo_in_a_scanned_directory_is_reported_and_never_opened(repo):
    os.mkfifo(repo / "pipe.json")
    run_ = scan(".", cwd=repo, timeout=30)
    assert run_.code == 2
    assert run_.errors() == [("pipe.json", "not a regular file (a FIFO); not read")]
    assert run_.findings() == public_findings("public-ami.json")


def test_devices_sockets_and_links_to_them_are_never_read(repo):
    os.symlink("/dev/zero", repo / "zero.json")  # st_size 0: a size check alone reads forever
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(repo / "socket.yaml"))
    try:
        run_ = scan(".", "/dev/zero", cwd=repo, timeout=30, memory_mb=1024)
    finally:
        listener.close()
    assert run_.code == 2
    assert sorted(run_.errors()) == [
        ("/dev/zero", "not a regular file (a character device); not read"),
        ("socket.yaml", "not a regular file (a socket); not read"),
        ("zero.json", "not a regular file (a character device); not read"),
    ]
    assert run_.findings() == public_findings("public-ami.json")


# -- 2. YAML alias expansion has a budget -------------------------------------------------------
LAUGHS = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Laughs:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: laughs
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            LaunchPermissionConfiguration:
              UserGroups: [all]
      Description: laughs
Metadata:
  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]
  l1: &l1 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]
  l2: &l2 [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]
  l3: &l3 [*l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2]
  l4: &l4 [*l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3]
  l5: &l5 [*l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4]
  l6: &l6 [*l5, *l5, *l5, *l5, *l5, *l5, *l5, *l5, *l5, *l5]
  l7: &l7 [*l6, *l6, *l6, *l6, *l6, *l6, *l6, *l6, *l6, *l6]
  l8: &l8 [*l7, *l7, *l7, *l7, *l7, *l7, *l7, *l7, *l7, *l7]
"""


def test_yaml_alias_bomb_stops_at_the_budget_and_names_the_anchor(repo):
    (repo / "laughs.yaml").write_text(LAUGHS)
    run_ = scan(".", cwd=repo, timeout=60, memory_mb=1024)
    assert run_.code == 2
    # 10 values expand to 11 nodes, then 111, 1,111, 11,111: past the 10,000-node floor.
    line = line_of(LAUGHS, "&l3")
    column = LAUGHS.splitlines()[line - 1].index("&l3") + 1
    assert run_.errors() == [
        (
            "laughs.yaml",
            f"line {line}, column {column}: YAML aliases expand this value to more than 10,000 nodes, "
            f"the budget for a document of {len(LAUGHS):,} characters (aliases may not make a document "
            "bigger than one without them could be)",
        )
    ]
    assert run_.findings() == public_findings("public-ami.json")


def test_recursive_yaml_alias_is_an_error_not_a_crash(repo):
    text = LAUGHS.split("Metadata:")[0] + "Metadata:\n  loop: &loop [a, *loop]\n"
    (repo / "loop.yaml").write_text(text)
    run_ = scan(".", cwd=repo, timeout=30, memory_mb=1024)
    line = line_of(text, "&loop")
    column = text.splitlines()[line - 1].index("&loop") + 1
    assert run_.code == 2
    assert run_.errors() == [("loop.yaml", f"line {line}, column {column}: YAML alias refers to itself (*loop)")]
    assert run_.findings() == public_findings("public-ami.json")


def test_aliases_within_the_budget_are_read(repo):
    text = LAUGHS.split("Metadata:")[0].replace(
        "UserGroups: [all]", "UserGroups: [all]\n            AmiTags: &tags {team: a}"
    )
    text += "      Tags: *tags\n"
    (repo / "small.yaml").write_text(text)
    run_ = scan(".", cwd=repo, timeout=30)
    assert run_.code == 1
    assert ("IBD002", PUBLIC_POINTER, "small.yaml", line_of(text, "UserGroups")) in run_.findings()


# -- 3. symlink loops, unreadable and symlinked directories ---------------------------------------
def test_symlink_loops_are_errors_naming_the_path(repo):
    os.symlink("self.json", repo / "self.json")
    os.symlink("b.yaml", repo / "a.yaml")
    os.symlink("a.yaml", repo / "b.yaml")
    run_ = scan(".", "self.json", cwd=repo, timeout=30)
    assert run_.code == 2
    loop = "cannot read file: Too many levels of symbolic links"
    assert sorted(run_.errors()) == [("a.yaml", loop), ("b.yaml", loop), ("self.json", loop), ("self.json", loop)]
    assert run_.findings() == public_findings("public-ami.json")


def test_symlinked_directories_are_listed_under_verbose_and_not_followed(repo, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(PUBLIC, outside / "elsewhere.json")
    os.symlink(outside, repo / "linked")
    os.symlink(".", repo / "again")  # a loop, if it were followed
    run_ = scan(".", "-v", cwd=repo, timeout=30)
    assert run_.code == 1
    assert run_.audited() == ["public-ami.json"]
    assert "ib-audit: again: skipped, a symbolic link to a directory (not followed)" in run_.err.splitlines()
    assert "ib-audit: linked: skipped, a symbolic link to a directory (not followed)" in run_.err.splitlines()
    # Named on the command line, the linked directory is scanned: the user asked for it.
    run_ = scan("linked", cwd=repo, timeout=30)
    assert run_.audited() == ["linked/elsewhere.json"]


def test_unreadable_directory_is_an_error_naming_it(repo):
    locked = repo / "locked"
    locked.mkdir()
    shutil.copy(PUBLIC, locked / "hidden.json")
    locked.chmod(0)
    try:
        probe = subprocess.run(
            [sys.executable, "-c", f"import os; os.listdir({str(locked)!r})"],
            capture_output=True,
            preexec_fn=lambda: _drop_file_permission_override() if os.geteuid() == 0 else None,
        )
        if probe.returncode == 0:
            skip_or_fail("cannot make a directory unreadable here (capabilities cannot be dropped)")
        run_ = scan(".", cwd=repo, timeout=30, obey_file_modes=True)
    finally:
        locked.chmod(0o755)
    assert run_.code == 2
    assert run_.errors() == [("locked", "cannot read directory: Permission denied")]
    assert run_.findings() == public_findings("public-ami.json")


# -- 4. sniffing by structure ----------------------------------------------------------------------
def test_api_json_that_mentions_the_cloudformation_type_is_read_as_api_json(repo):
    doc = json.loads(PUBLIC.read_text())
    doc["distributionConfiguration"]["description"] = (
        "Resources: migrated from the AWS::ImageBuilder::DistributionConfiguration in stack golden"
    )
    text = json.dumps(doc, indent=2)
    (repo / "public-ami.json").write_text(text)
    expected = public_findings("public-ami.json", text)
    for args in ((".",), ("public-ami.json",)):
        run_ = scan(*args, cwd=repo, timeout=30)
        assert run_.code == 1, args
        assert run_.findings() == expected, args


def test_every_walked_file_is_audited_listed_or_an_error(repo):
    files = {
        # The type only in a comment and a description: not a configuration.
        "other-stack.yaml": "# no AWS::ImageBuilder::DistributionConfiguration here\nResources:\n"
        "  Bucket:\n    Type: AWS::S3::Bucket\n",
        "other-stack.json": json.dumps(
            {
                "Description": "AWS::ImageBuilder::DistributionConfiguration",
                "Resources": {"B": {"Type": "AWS::S3::Bucket"}},
            }
        ),
        "main.tf": '# aws_imagebuilder_distribution_configuration comes later\nresource "aws_s3_bucket" "b" {}\n',
        "package.json": '{"name": "left-pad"}',
        "empty.yaml": "",
        "broken.json": '{"distributions": [}',
        "workflow.yml": "on: push\njobs: {}\n",
    }
    for name, text in files.items():
        (repo / name).write_text(text)
    run_ = scan(".", "-v", cwd=repo, timeout=30)
    walked = [*files, "public-ami.json"]
    listed = {line.split(": ")[1] for line in run_.err.splitlines() if ": skipped, " in line}
    in_report = {t["id"] for t in run_.report["targets"]}
    for name in walked:
        assert (name in listed) != (name in in_report), name
    assert [t["id"] for t in run_.report["targets"] if t["status"] == "error"] == ["broken.json"]


# -- 5. huge integers and deep nesting: line and column ------------------------------------------
def test_huge_integers_and_deep_nesting_name_line_and_column(repo):
    digits = "7" * 5000
    head = '{\n  "name": "x",\n  "distributions": [{"region": "us-east-1"}],\n'
    huge_json = head + f'  "timeoutMinutes": {digits}\n}}\n'
    deep_json = head + '  "x":\n' + "[" * 1500 + "]" * 1500 + "\n}\n"
    template = (
        "Resources:\n  X:\n    Type: AWS::ImageBuilder::DistributionConfiguration\n    Properties:\n"
        "      Name: x\n      Distributions:\n        - Region: us-east-1\n"
    )
    huge_yaml = template + f"      Description: {digits}\n"
    deep_yaml = template + "      Description: " + "[" * 900 + "]" * 900 + "\n"
    for name, text in {
        "huge.json": huge_json,
        "deep.json": deep_json,
        "huge.yaml": huge_yaml,
        "deep.yaml": deep_yaml,
    }.items():
        (repo / name).write_text(text)
    run_ = scan(".", cwd=repo, timeout=60, memory_mb=1024)
    assert run_.code == 2
    # Depth counts every enclosing object or list, the root's included: the first "[" of
    # deep.json is at depth 2, that of deep.yaml at depth 5 (root, Resources, X,
    # Properties, the list itself); the error points at the bracket that reaches 201.
    deep_line = line_of(deep_json, "[[[")
    yaml_line = line_of(deep_yaml, "[[[")
    yaml_column = deep_yaml.splitlines()[yaml_line - 1].index("[") + 1 + 196
    assert sorted(run_.errors()) == [
        ("deep.json", f"line {deep_line}, column 200: nested deeper than 200 levels"),
        ("deep.yaml", f"line {yaml_line}, column {yaml_column}: nested deeper than 200 levels"),
        (
            "huge.json",
            f"line {line_of(huge_json, digits)}, column 21: integer with 5000 digits, more than 4300",
        ),
        (
            "huge.yaml",
            f"line {line_of(huge_yaml, digits)}, column 20: integer with 5000 digits, more than 4300",
        ),
    ]
    assert run_.findings() == public_findings("public-ami.json")


# -- live scans: a server that misbehaves ------------------------------------------------------------
LIVE_REGIONS = ("us-east-1", "eu-west-1")
ACCOUNT = "111122223333"


def _public_config(name: str) -> dict:
    config = json.loads(PUBLIC.read_text())["distributionConfiguration"]
    return {**{k: v for k, v in config.items() if k != "arn"}, "name": name}


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Dummy credentials and no shared config: nothing may reach real AWS."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "AKIDLOCALTEST",
        "AWS_SECRET_ACCESS_KEY": "local-secret",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


@pytest.fixture
def hostile(aws_env):
    """A local Image Builder endpoint with two public configurations per region."""
    from imagebuilder_server import ImageBuilderServer

    server = ImageBuilderServer()
    for region in LIVE_REGIONS:
        for name in ("first", "second"):
            server.add(region, _public_config(f"{name}-{region}"))
    aws_env.setenv("AWS_ENDPOINT_URL_IMAGEBUILDER", server.start())
    yield server
    server.stop()


def _arns(server, region: str) -> list[str]:
    return sorted(server.configs[(ACCOUNT, region)])


def live_scan(tmp_path: Path, *args: str, seconds: float = 60) -> Scan:
    """``ib-audit scan --aws ...`` in this process, in a thread that must end in time."""
    from auditor.cli import main

    out = tmp_path / "live.json"
    out.unlink(missing_ok=True)
    text = tmp_path / "live.txt"
    code = within(seconds, main, ["scan", *args, "-f", f"json={out}", "-f", f"text={text}", "-q"])
    report = json.loads(out.read_text()) if out.exists() else {}
    proc = subprocess.CompletedProcess(args, code, text.read_text() if text.exists() else "", "")
    return Scan(proc, report)


def test_pagination_that_repeats_a_token_is_an_error_for_that_region(hostile, tmp_path):
    hostile.faults.hostile_lists = {"eu-west-1": "repeat-token"}
    run_ = live_scan(tmp_path, "--aws", "--region", "us-east-1,eu-west-1")
    assert run_.code == 2
    assert run_.errors() == [("region eu-west-1", "pagination does not end: nextToken 'again' came back on page 2")]
    assert run_.audited() == _arns(hostile, "us-east-1")
    assert hostile.listed_regions["eu-west-1"] == 2


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("html", "bad response body: an HTML page, not JSON"),
        ("empty", "bad response body: empty"),
        ("truncated", "bad response body: not valid JSON (truncated?)"),
    ],
)
def test_bodies_that_are_not_answers_are_errors_never_an_empty_pass(hostile, tmp_path, mode, reason):
    bad_get = _arns(hostile, "us-east-1")[0]
    hostile.faults.hostile_lists = {"eu-west-1": mode}
    hostile.faults.hostile_gets = {bad_get: mode}
    run_ = live_scan(tmp_path, "--aws", "--region", "us-east-1,eu-west-1")
    assert run_.code == 2
    assert sorted(run_.errors()) == sorted([("region eu-west-1", reason), (bad_get, reason)])
    assert run_.audited() == _arns(hostile, "us-east-1")[1:]
    assert "Result: incomplete" in run_.out


def test_a_body_trickled_byte_by_byte_meets_the_call_deadline(hostile, tmp_path):
    slow = _arns(hostile, "us-east-1")[0]
    hostile.faults.hostile_gets = {slow: "trickle"}
    hostile.faults.trickle_interval = 0.2  # the body takes minutes; each byte comes in time
    env = dict(os.environ)
    run_ = scan("--aws", "--region", "us-east-1", "--call-deadline", "2", cwd=tmp_path, timeout=60, env=env)
    assert run_.code == 2
    assert run_.errors() == [(slow, "no complete answer within 2 s (the call deadline; --call-deadline changes it)")]
    assert run_.audited() == _arns(hostile, "us-east-1")[1:]


def test_a_reset_connection_is_retried_then_an_error_for_that_item(hostile):
    from auditor.sources import aws

    reset = _arns(hostile, "us-east-1")[0]
    hostile.faults.hostile_gets = {reset: "reset"}
    options = aws.AwsOptions(regions=["us-east-1"], max_attempts=2, base_delay=0.001, max_delay=0.002)
    result = within(30, aws.fetch, options)
    errors = {t.id: t.error for t in result.targets if t.error}
    assert list(errors) == [reset]
    assert errors[reset].startswith("connection error: ") and "gave up after 2 attempts" in errors[reset]
    assert sorted(t.id for t in result.targets if t.error is None) == _arns(hostile, "us-east-1")[1:]
    assert hostile.calls["GetDistributionConfiguration"] == 2 + 1


def test_odd_shapes_are_errors_for_their_item_and_file_inputs_are_kept(hostile, tmp_path):
    east, west = _arns(hostile, "us-east-1"), _arns(hostile, "eu-west-1")
    hostile.add("ap-south-1", _public_config("third-ap-south-1"))
    hostile.add("ap-south-1", _public_config("fourth-ap-south-1"))
    south = _arns(hostile, "ap-south-1")
    hostile.add("sa-east-1", _public_config("only-sa-east-1"))
    hostile.faults.hostile_lists = {
        "us-east-1": "no-arn",
        "eu-west-1": "string-list",
        "ap-south-1": "number-arn",
        "sa-east-1": "duplicate-arns",
    }
    hostile.faults.hostile_gets = {east[1]: "list-config", south[1]: "string-config"}
    local = tmp_path / "public-ami.json"  # outside the working directory: shown as given
    shutil.copy(PUBLIC, local)
    run_ = live_scan(tmp_path, str(local), "--aws", "--region", "us-east-1,eu-west-1,ap-south-1,sa-east-1")
    assert run_.code == 2
    assert sorted(run_.errors()) == sorted(
        [
            ("region us-east-1", "distributionConfigurationSummaryList[0] has no arn; skipped"),
            ("region eu-west-1", "bad response body: distributionConfigurationSummaryList is a string, not a list"),
            ("region ap-south-1", "distributionConfigurationSummaryList[0]: arn is a number, not a string; skipped"),
            (east[1], "bad response body: distributionConfiguration is a list, not an object"),
            (south[1], "bad response body: distributionConfiguration is a string, not an object"),
        ]
    )
    del west
    assert run_.audited() == sorted([str(local), *_arns(hostile, "sa-east-1")])
    assert [t["id"] for t in run_.report["targets"]].count(_arns(hostile, "sa-east-1")[0]) == 1
    assert hostile.calls["GetDistributionConfiguration"] == 3  # east[1], south[1], the sa-east-1 one once


# -- 10. --region all ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moto_url():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_region_all_is_where_image_builder_is_offered_and_enabled(hostile, aws_env, moto_url, tmp_path):
    """moto ships AWS's public SSM parameters and marks opt-in regions not opted in."""
    import urllib.request

    import boto3

    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    aws_env.setenv("AWS_ENDPOINT_URL_SSM", moto_url)
    aws_env.setenv("AWS_ENDPOINT_URL_EC2", moto_url)
    parameter = "/aws/service/global-infrastructure/services/imagebuilder/regions"
    ssm = boto3.client("ssm", region_name="us-east-1")
    offered = set()
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=parameter):
        offered |= {p["Value"] for p in page["Parameters"]}
    # A region where Image Builder were not offered: gone from the list, never an error.
    ssm.delete_parameter(Name=f"{parameter}/eu-west-3")
    offered.discard("eu-west-3")
    regions = boto3.client("ec2", region_name="us-east-1").describe_regions()["Regions"]
    enabled = {r["RegionName"] for r in regions if r["OptInStatus"] != "not-opted-in"}
    expected = {r for r in offered & enabled if not r.startswith(("cn-", "us-gov-", "eusc-"))}
    assert {"us-east-1", "eu-west-1", "ap-south-1"} <= expected  # what the test stands on
    assert "ap-east-1" in offered - enabled and "eu-west-3" in enabled - offered
    for region in LIVE_REGIONS:
        for arn in _arns(hostile, region):
            del hostile.configs[(ACCOUNT, region)][arn]
    hostile.add(
        "eu-west-1", json.loads((EXAMPLES / "compliant-baseline.json").read_text())["distributionConfiguration"]
    )

    run_ = live_scan(tmp_path, "--aws", "--region", "all", "--config", str(EXAMPLES / "ib-audit.toml"))
    assert run_.errors() == []
    assert set(hostile.listed_regions) == expected
    assert run_.audited() == _arns(hostile, "eu-west-1")
    assert run_.code == 0  # a nightly --region all scan of a compliant account passes


def test_region_all_without_the_public_parameters_is_an_error_and_still_scans(hostile, aws_env, tmp_path):
    aws_env.setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:9")  # nothing listens there
    aws_env.setenv("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:9")
    run_ = live_scan(tmp_path, "--aws", "--region", "all", "--call-deadline", "5", seconds=60)
    assert run_.code == 2
    messages = [m for i, m in run_.errors() if i == "--region all"]
    assert len(messages) == 2
    assert messages[0].startswith("cannot read where Image Builder is offered (ssm:GetParametersByPath): ")
    assert messages[1].startswith("cannot read the regions enabled for this account (ec2:DescribeRegions): ")
    assert {"us-east-1", "eu-west-1"} <= set(hostile.listed_regions)


# -- 11. snapshots -----------------------------------------------------------------------------------
def test_snapshots_distinct_names_distinct_files_never_outside_the_folder(hostile, tmp_path):
    for arn in _arns(hostile, "eu-west-1"):
        del hostile.configs[(ACCOUNT, "eu-west-1")][arn]
    names = ["a b", "a_b", "a/b", "x" * 300, "..", "%41"]
    arns = {name: hostile.add("eu-west-1", _public_config(name)) for name in names}
    snap = tmp_path / "snapshots"
    outside = tmp_path / "outside"
    outside.mkdir()
    (snap / ACCOUNT).mkdir(parents=True)
    os.symlink(outside, snap / ACCOUNT / "us-east-1")  # a committed link must not be followed
    run_ = live_scan(tmp_path, "--aws", "--region", "us-east-1,eu-west-1", "--snapshot-dir", str(snap))
    assert run_.code == 2
    assert list(outside.iterdir()) == []
    link = snap / ACCOUNT / "us-east-1"
    assert sorted(run_.errors()) == [
        (arn, f"cannot write snapshot: {link}: not a directory (a symbolic link is not followed)")
        for arn in _arns(hostile, "us-east-1")
    ]
    # Those two are still audited, located by ARN.
    assert sorted(t for t in run_.audited() if ":us-east-1:" in t) == _arns(hostile, "us-east-1")
    files = {f["target"]: f["location"].get("file") for f in run_.report["findings"] if ":eu-west-1:" in f["target"]}
    assert sorted(files) == sorted(arns.values())
    assert len(set(files.values())) == len(names)
    for name, arn in arns.items():
        file = Path(files[arn])
        assert file.parent == snap / ACCOUNT / "eu-west-1"
        assert len(file.name.encode()) <= 255 and not file.name.startswith(".")
        assert json.loads(file.read_text())["distributionConfiguration"]["name"] == name
    assert sorted(p.name for p in (snap / ACCOUNT / "eu-west-1").iterdir()) == sorted(
        Path(f).name for f in files.values()
    )


def test_a_snapshot_link_to_a_file_is_replaced_never_written_through(hostile, tmp_path):
    snap = tmp_path / "snapshots"
    folder = snap / ACCOUNT / "us-east-1"
    folder.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    first = _arns(hostile, "us-east-1")[0]
    os.symlink(victim, folder / (first.rsplit("/", 1)[1] + ".json"))
    run_ = live_scan(tmp_path, "--aws", "--region", "us-east-1", "--snapshot-dir", str(snap))
    assert run_.code == 1
    assert victim.read_text() == "keep me\n"
    written = folder / (first.rsplit("/", 1)[1] + ".json")
    assert not written.is_symlink() and json.loads(written.read_text())["distributionConfiguration"]


def test_a_snapshot_folder_that_cannot_be_written_is_an_error_and_reports_are_kept(hostile, tmp_path):
    blocked = tmp_path / "snapshots"
    blocked.write_text("a file where the folder should be\n")
    run_ = live_scan(tmp_path, "--aws", "--region", "us-east-1", "--snapshot-dir", str(blocked))
    assert run_.code == 2
    assert [i for i, _ in run_.errors()] == _arns(hostile, "us-east-1")
    assert all(m.startswith(f"cannot write snapshot: {blocked}: ") for _, m in run_.errors())
    assert run_.audited() == _arns(hostile, "us-east-1")
    assert {f["rule_id"] for f in run_.report["findings"]} == {"IBD002", "IBD009"}
