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
