"""Hostile input and faults: nothing hangs, nothing passes silently, nothing leaks.

Each class of the threat list is tried as a hostile contributor or a flaky network would:
the CLI runs in a subprocess with a time limit (and, where an input could expand, a
memory limit), or in a thread that must finish within a join timeout. The contract is
always the same: one line naming the input, exit 2, every other input still audited and
every report still written.
"""

from __future__ import annotations

import contextlib
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
    found = [
        ("IBD002", PUBLIC_POINTER, file, line_of(text, '"all"')),
        ("IBD009", "/distributions/0/amiDistributionConfiguration/name", file, line_of(text, '"community-demo"')),
    ]
    return sorted(found, key=lambda f: f[3])  # reports list findings by line


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
        [sys.executable, "-P", "-m", "auditor", *argv],
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
        run_ = scan(".", "/dev/zero", "zero.json", cwd=repo, timeout=30, memory_mb=1024)
    finally:
        listener.close()
    assert run_.code == 2
    assert sorted(run_.errors()) == [
        ("/dev/zero", "not a regular file (a character device); not read"),
        ("socket.yaml", "not a regular file (a socket); not read"),
        ("zero.json", "not a regular file (a character device); not read"),
    ]
    assert run_.findings() == public_findings("public-ami.json")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_walk_reads_links_to_files_only_inside_the_tree(repo, tmp_path, jobs):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(PUBLIC, outside / "secret.json")
    os.symlink(outside / "secret.json", repo / "a-out.json")
    os.symlink("/proc/self/environ", repo / "b-env.yaml")  # a regular file, full of secrets
    (repo / "sub").mkdir()
    os.symlink("../public-ami.json", repo / "sub" / "in.json")
    run_ = scan(".", "--jobs", jobs, cwd=repo, timeout=30)
    # Links out of the tree are warnings, not errors: the exit code is the findings'.
    assert run_.code == 1
    assert run_.errors() == []
    assert run_.audited() == ["public-ami.json", "sub/in.json"]
    assert run_.findings() == public_findings("public-ami.json") + public_findings("sub/in.json")
    skipped = "skipped: a symbolic link to {}, outside the directory scanned (.); name the file on the command line to scan it"
    assert run_.report["warnings"] == [
        {"kind": "skipped-link", "message": skipped.format(outside / "secret.json"), "input": "a-out.json"},
        {"kind": "skipped-link", "message": skipped.format("/proc/self/environ"), "input": "b-env.yaml"},
    ]
    assert f"ib-audit: warning: a-out.json: {skipped.format(outside / 'secret.json')}" in run_.err.splitlines()
    # Named on the command line, the file is read: the user asked for it.
    run_ = scan("a-out.json", cwd=repo, timeout=30)
    assert run_.audited() == ["a-out.json"]
    assert run_.report["warnings"] == []


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


# -- 6. one rule reports at most 1,000 problems per configuration -------------------------------------
def _shared_with(name: str, accounts: list[str]) -> dict:
    """A saved configuration whose only mistake is each of ``accounts`` (IBD006 each)."""
    ami = {"name": f"{name}-{{{{ imagebuilder:buildDate }}}}", "kmsKeyId": "alias/golden", "targetAccountIds": accounts}
    distributions = [{"region": "us-east-1", "amiDistributionConfiguration": ami}]
    return {"distributionConfiguration": {"name": name, "distributions": distributions}}


def test_a_flood_of_findings_is_bounded_and_fails_the_run_as_incomplete(repo):
    """2 MB of malformed account ids were 200,000 findings, 32 s and 480 MB of memory; the
    20 MB file limit allowed ten times that. The rule stops at 1,000 and says so."""
    document = _shared_with("flood", [f"bad{i}" for i in range(3000)])
    (repo / "flood.json").write_text(json.dumps(document, indent=1))
    run_ = scan(".", cwd=repo, timeout=60)
    assert run_.code == 2
    assert run_.errors() == [
        (
            "flood.json",
            "rule IBD006 has more than 1,000 findings in this configuration; "
            "only the first 1,000 are reported and the rule stopped there",
        )
    ]
    text = (repo / "flood.json").read_text()
    lines = text.splitlines()
    first = next(n for n, line in enumerate(lines, 1) if '"bad0"' in line)
    pointer = "/distributions/0/amiDistributionConfiguration/targetAccountIds/{}"
    flood = [("IBD006", pointer.format(i), "flood.json", first + i) for i in range(1000)]
    assert lines[first + 999 - 1].strip() == '"bad999",'  # expected lines read off the file
    assert sorted(f for f in run_.findings() if f[2] == "flood.json") == sorted(flood)
    assert [f for f in run_.findings() if f[2] != "flood.json"] == public_findings("public-ami.json")


@pytest.mark.parametrize("context", [False, True], ids=["files", "aws-context"])
def test_a_file_reports_at_most_ten_thousand_findings(repo, context, request):
    """Under the bound per rule, many configurations of 1,000 bad accounts each (a 20 MB
    file holds 2,000 such) were still millions of findings: a file stops at 10,000. An
    --aws-context scan audits its files only once all are loaded, by another path: the
    same bound holds there (it reported all 13,000)."""

    (repo / "many.json").write_text(
        json.dumps([_shared_with(f"c{n}", [f"bad{n}-{i}" for i in range(1000)]) for n in range(13)], indent=1)
    )
    extra = ["--select", "IBD002,IBD006"]  # the rules of these files' mistakes, and no account's
    if context:
        request.getfixturevalue("aws_env").setenv("AWS_ENDPOINT_URL", request.getfixturevalue("moto_url"))
        extra.append("--aws-context")
    run_ = scan(".", *extra, cwd=repo, timeout=120)
    assert run_.code == 2
    assert run_.errors() == [
        (
            "many.json",
            "more than 10,000 findings in this file: only the first 10,000 are reported "
            "(none of many.json#/10's), and the 2 configuration(s) after it were not audited",
        )
    ]
    lines = (repo / "many.json").read_text().splitlines()
    line = {text.strip().rstrip(","): number for number, text in enumerate(lines, 1) if '"bad' in text}
    pointer = "/distributions/0/amiDistributionConfiguration/targetAccountIds/{}"
    expected = [
        ("IBD006", pointer.format(i), "many.json", line[f'"bad{n}-{i}"']) for n in range(10) for i in range(1000)
    ]
    assert sorted(f for f in run_.findings() if f[2] == "many.json") == sorted(expected)
    assert [t for t in run_.audited() if t.startswith("many.json")] == sorted(f"many.json#/{n}" for n in range(11))


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
    for key in ("AWS_PROFILE", "AWS_DEFAULT_REGION"):
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


# -- 12. terminal, CI log, JUnit and Markdown escaping ------------------------------------------------
HOSTILE_TEXT = "\n::error file=x::pwned\x1b[2J\r##[group]evil\u2028::warning::y\u202etxt.exe"


def _assert_log_safe(text: str) -> None:
    for line in text.splitlines():
        assert not line.lstrip().startswith("::"), line
    for bad in ("\x1b", "\r", "\u2028", "\u202e", "##["):
        assert bad not in text, repr(bad)


def test_text_report_and_logs_cannot_inject_escapes_or_workflow_commands(repo):
    doc = {"name": "n", "distributions": [{"region": "us-east-1", HOSTILE_TEXT: 1}]}
    (repo / "::error::named.json").write_text(json.dumps(doc))
    (repo / "bad\n::notice::x.json").write_text('{"distributions": [}')
    os.mkfifo(repo / "pipe\x1b[31m.json")
    run_ = scan(".", "-v", cwd=repo, timeout=30)
    assert run_.code == 2
    _assert_log_safe(run_.out)
    _assert_log_safe(run_.err)
    # The JSON report keeps the data exactly; only what a terminal shows is escaped.
    messages = [f["message"] for f in run_.report["findings"] if f["rule_id"] == "IBD016"]
    assert any(HOSTILE_TEXT in m or repr(HOSTILE_TEXT)[1:-1] in m for m in messages)
    assert "bad\n::notice::x.json" in [e[0] for e in run_.errors()]
    assert "\\x3a:error::named.json:" in run_.out


def test_junit_markdown_and_every_report_survive_forbidden_characters(repo, tmp_path):
    from xml.etree import ElementTree as ET

    from markdown_it import MarkdownIt

    name = "x\x00\x07 [click](https://evil.example) ![i](https://evil.example/i.png) `code` <b>"
    doc = {"name": name, "distributions": [{"region": "us-east-1", name: 1}]}
    (repo / "hostile.json").write_text(json.dumps(doc))
    half = '{"name": "\\ud800", "distributions": []}'  # JSON, but not text: an error
    (repo / "half.json").write_text(half)
    (repo / "[link](https:evil).json").write_text('{"distributions": [}')
    out = tmp_path / "reports"
    out.mkdir()
    formats = {"junit": "r.xml", "markdown": "r.md", "html": "r.html", "sarif": "r.sarif", "text": "r.txt"}
    args = [arg for fmt, file in formats.items() for arg in ("-f", f"{fmt}={out / file}")]
    run_ = scan(".", *args, cwd=repo, timeout=60)
    assert run_.code == 2
    assert "failed" not in run_.err and "cannot write" not in run_.err, run_.err
    assert sorted(p.name for p in out.iterdir()) == sorted(formats.values())
    root = ET.fromstring((out / "r.xml").read_bytes())  # well-formed XML
    assert any("x\\x00\\x07 [click]" in (case.get("classname") or "") for case in root.iter("testcase"))
    column = half.index("\\ud800") + 1
    assert ("half.json", f"line 1, column {column}: \\ud800 is half a UTF-16 pair, not text") in run_.errors()
    html = MarkdownIt("commonmark").enable("table").render((out / "r.md").read_text())
    assert "<a " not in html and "<img" not in html
    assert "<code>" not in html  # an incomplete verdict has no code span of its own
    _assert_log_safe((out / "r.txt").read_text())
    json.loads((out / "r.sarif").read_text())


# -- 13. atomic writes, distinct outputs ------------------------------------------------------------
def test_the_same_output_twice_is_a_usage_error_before_any_work(repo):
    proc = run(["scan", ".", "-f", "json=out.json", "-f", "html=./out.json"], repo, timeout=30)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "ib-audit: error: -f json=out.json and -f html=./out.json write the same file; give each its own"
    )
    assert not (repo / "out.json").exists()
    proc = run(["scan", ".", "-f", "json=b.json", "--write-baseline", "b.json"], repo, timeout=30)
    assert proc.returncode == 2 and "write the same file" in proc.stderr


def test_reports_replace_files_and_links_whole_and_a_failed_one_keeps_the_others(repo, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim, out / "linked.json")  # a link planted where the report goes
    (out / "old.sarif").write_text("old\n")
    (out / "a-directory.html").mkdir()
    run_ = scan(
        ".",
        "-f",
        f"sarif={out / 'old.sarif'}",
        "-f",
        f"html={out / 'a-directory.html'}",
        "--write-baseline",
        str(tmp_path / "missing" / "baseline.json"),
        cwd=repo,
        out=out / "linked.json",
        timeout=30,
    )
    assert run_.code == 2
    assert victim.read_text() == "keep me\n"
    assert not (out / "linked.json").is_symlink() and run_.report["version"] == 1
    assert json.loads((out / "old.sarif").read_text())["version"] == "2.1.0"
    assert f"cannot write html report to {out / 'a-directory.html'}" in run_.err
    assert (
        str(tmp_path / "missing" / "baseline.json"),
        "cannot write baseline: No such file or directory",
    ) in run_.errors()
    assert sorted(p.name for p in out.iterdir()) == ["a-directory.html", "linked.json", "old.sarif"]  # no leftovers


# -- 14. merge reads only the reports it is given -----------------------------------------------------
def _report(repo: Path, out: Path) -> dict:
    run_ = scan(".", cwd=repo, out=out, timeout=30)
    assert run_.code == 1
    return run_.report


def test_merge_never_opens_a_file_a_report_names(repo, tmp_path):
    secret = tmp_path / "secret.env"
    secret.write_text("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI-do-not-leak\n")
    report = _report(repo, tmp_path / "one.json")
    assert report["findings"][0]["snippet"]["lines"]  # the scan embeds what the page shows
    for finding in report["findings"]:
        finding["location"]["file"] = str(secret)
        finding.pop("snippet")
    crafted = tmp_path / "crafted.json"
    crafted.write_text(json.dumps(report))
    html = tmp_path / "merged.html"
    proc = run(["merge", str(crafted), "-f", f"html={html}", "-f", "json=merged.json"], tmp_path, timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert "wJalrXUtnFEMI" not in html.read_text()
    assert "wJalrXUtnFEMI" not in (tmp_path / "merged.json").read_text()


def test_merged_html_shows_the_embedded_lines(repo, tmp_path):
    report = _report(repo, tmp_path / "one.json")
    shutil.rmtree(repo)  # the files are gone: the page still shows their lines
    html = tmp_path / "merged.html"
    proc = run(["merge", str(tmp_path / "one.json"), "-f", f"html={html}"], tmp_path, timeout=30)
    assert proc.returncode == 1
    line = next(line for line in PUBLIC.read_text().splitlines() if '"all"' in line)
    public = next(f for f in report["findings"] if f["rule_id"] == "IBD002")
    assert public["snippet"]["lines"][1] == line
    assert "launchPermission" in html.read_text()


MALFORMED = [
    (lambda r: r["findings"][0].update(rule_id=7), "findings[0].rule_id: expected a string, got a number"),
    (lambda r: r["findings"][0].update(rule_id="../x"), "findings[0].rule_id: '../x' is not a rule id"),
    (
        lambda r: r["findings"][0]["location"].update(start_line=-3),
        "findings[0].location.start_line: -3 is not a line or column number",
    ),
    (lambda r: r["findings"][0].update(target="elsewhere"), "findings[0].target: not one of this report's targets"),
    (
        lambda r: r["findings"][0].update(snippet={"first_line": 1, "lines": ["x"] * 99}),
        "findings[0].snippet: expected first_line and at most 8 lines",
    ),
    (lambda r: r["targets"][0].update(origin="json"), "targets[0].origin: expected an object, got a string"),
    (lambda r: r["targets"].append(r["targets"][0]), "targets[1]: target 'other-public.json' appears twice"),
    (lambda r: r.update(unverified=[{"target": 1}]), "unverified[0].target: expected a string, got a number"),
    (
        lambda r: r.update(coverage={"shard": "1/999999999", "pairs": []}),
        "coverage.shard: '1/999999999' is not K/N with 1 <= K <= N <= 1000",
    ),
    (lambda r: r.update(fixed=[{"target": ["x"]}]), "fixed[0].target: expected a string, a number or null, got a list"),
    (lambda r: r["summary"].update(fail_on="whenever"), "summary.fail_on: unknown severity 'whenever'"),
    (lambda r: r.update(facts=[]), "report.facts: expected an object, got a list"),
    (lambda r: r.update(facts={"elsewhere": {}}), "facts['elsewhere']: not one of this report's targets"),
    (
        lambda r: r.update(facts={"other-public.json": {"distributions": {}}}),
        "facts['other-public.json']['distributions']: not a JSON Pointer",
    ),
    (
        lambda r: r.update(facts={"other-public.json": {"/distributions/0": {"KMS key": 7}}}),
        "facts['other-public.json']['/distributions/0']['KMS key']: expected a string, got a number",
    ),
]


@pytest.mark.parametrize(("mutate", "reason"), MALFORMED, ids=[m[1].split(":")[0] for m in MALFORMED])
def test_a_malformed_report_counts_not_at_all_and_the_others_merge(repo, tmp_path, mutate, reason):
    good = _report(repo, tmp_path / "good.json")
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(PUBLIC, other / "other-public.json")
    bad = scan(".", cwd=other, out=tmp_path / "bad.json", timeout=30).report
    mutate(bad)
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    proc = run(["merge", "good.json", "bad.json", "-f", "json=merged.json"], tmp_path, timeout=30)
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert proc.returncode == 2
    assert merged["errors"] == [{"input": "bad.json", "message": f"cannot merge bad.json: {reason}"}]
    assert [t["id"] for t in merged["targets"]] == [t["id"] for t in good["targets"]]
    assert [f["fingerprint"] for f in merged["findings"]] == [f["fingerprint"] for f in good["findings"]]


def test_merge_refuses_what_is_not_a_report_without_hanging(repo, tmp_path):
    os.mkfifo(tmp_path / "pipe.json")
    (tmp_path / "deep.json").write_text("[" * 100_000)
    (tmp_path / "list.json").write_text("[]")
    proc = run(
        ["merge", "pipe.json", "deep.json", "list.json", "/dev/zero", "-f", "json=m.json"],
        tmp_path,
        timeout=30,
        memory_mb=1024,
    )
    assert proc.returncode == 2
    messages = [e["message"] for e in json.loads((tmp_path / "m.json").read_text())["errors"]]
    assert messages == [
        "cannot merge pipe.json: not a regular file (a FIFO); not read",
        "cannot merge deep.json: invalid JSON: maximum recursion depth exceeded while decoding a JSON array from a unicode string",
        "cannot merge list.json: not an ib-audit JSON report (version 1)",
        "cannot merge /dev/zero: not a regular file (a character device); not read",
    ]


# -- 15. baselines ---------------------------------------------------------------------------------
NOT_A_BASELINE = (
    "not an ib-audit baseline (version 1 or 2 with a findings list; write one with: ib-audit scan ... "
    "--write-baseline {path})"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", NOT_A_BASELINE),
        ('"findings"', NOT_A_BASELINE),
        ('{"version": "2.1.0", "runs": []}', NOT_A_BASELINE),
        (
            '{"version": 2, "findings": [{"fingerprint": 3}, "x"]}',
            "findings[0] is not a baseline entry (an object with a fingerprint)",
        ),
        (
            "7" * 5000,
            "invalid JSON: Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits; use sys.set_int_max_str_digits() to increase the limit",
        ),
        (
            "[" * 100_000,
            "invalid JSON: maximum recursion depth exceeded while decoding a JSON array from a unicode string",
        ),
    ],
)
def test_a_malformed_baseline_is_one_line_naming_it_never_a_traceback(repo, tmp_path, text, message):
    """A baseline is checked before the scan (a usage error, as every config problem)."""
    baseline = tmp_path / "baseline.json"
    baseline.write_text(text)
    run_ = scan(".", "--baseline", str(baseline), cwd=repo, timeout=30)
    assert run_.code == 2
    assert run_.err.splitlines() == [f"ib-audit: error: {baseline}: " + message.format(path=baseline)]


def test_a_baseline_entry_with_odd_values_cannot_break_matching(repo, tmp_path):
    baseline = tmp_path / "baseline.json"
    scan(".", "--write-baseline", str(baseline), cwd=repo, timeout=30)
    doc = json.loads(baseline.read_text())
    doc["findings"][0].update(resource=["not", "hashable"], target={"x": 1}, rule_id=None)
    baseline.write_text(json.dumps(doc))
    run_ = scan(".", "--baseline", str(baseline), cwd=repo, timeout=30)
    assert run_.code in (0, 1) and run_.report["findings"]


# -- 16. config ----------------------------------------------------------------------------------------
def test_blank_entries_and_inverted_bounds_are_config_errors(repo, tmp_path):
    config = tmp_path / "policy.toml"
    config.write_text(
        'ignore = [""]\nselect = ["IBD", " "]\n'
        '[rules.IBD006]\nallowed-accounts = ["", "111122223333"]\n'
        "[rules.IBD003]\nmax-parallel-launches = 3\nmax-target-resource-count = 0\n"
    )
    run_ = scan(".", "--config", str(config), cwd=repo, timeout=30)
    assert run_.code == 2  # config errors stop the run before scanning
    assert run_.err.splitlines() == [
        f"ib-audit: error: {config}: {message}"
        for message in (
            "ignore: entry 0 is empty",
            "select: entry 1 is empty",
            "rules.IBD006.allowed-accounts: entry 0 is empty",
            "rules.IBD003.max-parallel-launches: 3 is below 6, the least the rule allows; every value would fire",
            "rules.IBD003.max-target-resource-count: 0 is below 1, the least the rule allows; every value would fire",
        )
    ]


def test_a_minimum_above_its_maximum_is_a_config_error():
    from dataclasses import dataclass

    from auditor.config import Settings, apply_table
    from auditor.model import Severity
    from auditor.rule import Rule, option

    @dataclass(frozen=True)
    class Options:
        min_size: int = option(1, "Smallest.")
        max_size: int = option(10, "Largest.")

    class Sized(Rule):
        """Sized.\n\nWhy:\n  x\n\nExample:\n  x\n\nFix:\n  x\n"""

        id, slug, severity, summary = "TST001", "sized", Severity.LOW, "sized"

    Sized.Options = Options
    settings, errors = Settings(), []
    apply_table(settings, {"rules": {"TST001": {"min-size": 20}}}, [Sized], "", errors.append)
    assert errors == ["rules.TST001: min-size (20) is above max-size (10); every value would fire"]
    assert settings.rules["TST001"].options == {}


# -- property tests: merge inputs, baselines and config files never end in a traceback ------------
from functools import cache  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@cache
def _valid_report() -> str:
    """A real JSON report of the examples (with snippets), as text."""
    import io

    from auditor.config import Settings
    from auditor.engine import audit, configure_rules
    from auditor.plugins import PluginHost
    from auditor.reporting import result_dict
    from auditor.snippets import attach_snippets
    from auditor.sources import load_paths

    host = PluginHost(load_entry_points=False)
    loaded = load_paths([str(EXAMPLES)], host.file_sources(), 20_000_000)
    result = audit(host, configure_rules(host, Settings()), loaded.targets, loaded.errors, Settings())
    buffer = io.StringIO()
    json.dump(result_dict(attach_snippets(result, 20_000_000)), buffer)
    return buffer.getvalue()


def _replace_somewhere(doc, data, value):
    """``doc`` with one node, chosen by ``data``, replaced by ``value``."""
    nodes = []

    def walk(node, parent, key):
        nodes.append((parent, key))
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, child in children:
            walk(child, node, k)

    walk(doc, None, None)
    parent, key = data.draw(st.sampled_from(nodes))
    if parent is None:
        return value
    parent[key] = value
    return doc


def _all_reports(result) -> None:
    import io

    from auditor.plugins import PluginHost
    from auditor.reporting import ReportError

    for reporter in PluginHost(load_entry_points=False).reporters().values():
        # A report may say why it cannot be written (ASFF without an account): an error line.
        with contextlib.suppress(ReportError):
            reporter.write(result, io.StringIO())


@PROPERTY
@given(data=st.data(), value=JSON_VALUES)
def test_property_any_merge_input_merges_whole_or_is_refused(tmp_path, data, value):
    from auditor.merge import merge_reports

    doc = _replace_somewhere(json.loads(_valid_report()), data, value)
    path = tmp_path / "input.json"
    path.write_text(json.dumps(doc))
    from auditor.plugins import PluginHost

    known = {rule.id: (plugin, rule) for plugin, rule in PluginHost(load_entry_points=False).rules()}
    result = within(20, merge_reports, [path], known)  # as the CLI calls it
    refused = [e for e in result.errors if e.message.startswith(f"cannot merge {path}: ")]
    if refused:
        assert result.targets == () and result.findings == ()
    else:
        assert len(result.targets) == len(doc["targets"])
    within(20, _all_reports, result)


@PROPERTY
@given(data=st.data(), value=JSON_VALUES, whole=st.booleans())
def test_property_any_baseline_is_applied_or_an_error(tmp_path, data, value, whole):
    from auditor.baseline import apply_baseline, load_baseline
    from auditor.model import Finding, Location, Origin, Severity, Target

    valid = {
        "version": 2,
        "findings": [{"fingerprint": "f" * 32, "rule_id": "IBD001", "resource": "t", "key": "", "file": "f.json"}],
    }
    doc = value if whole else _replace_somewhere(valid, data, value)
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(doc))
    baseline, error = within(20, load_baseline, path)
    assert (baseline is None) != (error is None)
    if baseline is not None:
        target = Target(id="t", name="t", origin=Origin("json", file="f.json"))
        finding = Finding("IBD001", "r", Severity.HIGH, "m", "t", "", Location(file="f.json"), "f" * 32)
        apply_baseline([finding], baseline, [target])


TOP_KEYS = ["fail-on", "select", "ignore", "rules", "max-file-size-mb", "IBD003", "IBD006", "IBD014"]
RULE_KEYS = ["severity", "enabled", "max-parallel-launches", "min-minutes", "max-minutes", "allowed-accounts"]
KEYS = st.sampled_from([*TOP_KEYS, *RULE_KEYS, "fast-launch-bounds", "x"])
TOML_VALUES = st.recursive(
    st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10) | st.sampled_from(["", " ", "IBD", "high"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=10,
)


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


@PROPERTY
@given(table=st.dictionaries(KEYS, TOML_VALUES, max_size=5), noise=st.text(max_size=20))
def test_property_any_config_file_is_settings_or_errors(tmp_path, table, noise):
    from auditor.config import load_settings
    from auditor.engine import configure_rules
    from auditor.plugins import PluginHost

    host = PluginHost(load_entry_points=False)
    rules = [rule for _, rule in host.rules()]
    for text in ("\n".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in table.items()), noise):
        path = tmp_path / "config.toml"
        path.write_text(text, errors="surrogatepass")
        loaded = within(20, load_settings, path, rules)
        configure_rules(host, loaded)
        assert host.errors == [], host.errors  # every bad value was caught as a config error
