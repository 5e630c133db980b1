"""``--jobs``: files audited in forked worker processes give the scan's own result.

Run through the installed command (a fresh process, as users run it): the parent merges
what each worker sends back in file order, so every report must be byte-for-byte the
report of a single-process scan, whatever order the workers finish in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from auditor import parallel
from auditor.sources import error_target, inputs

from conftest import CORPUS, EXAMPLES, REPO, skip_or_fail

_local = Path(sys.executable).with_name("ib-audit")
EXE = str(_local) if _local.exists() else shutil.which("ib-audit")

pytestmark = pytest.mark.skipif(not parallel.can_fork(), reason="workers are forked; this platform cannot")


def _scan(tmp_path: Path, name: str, *args: str) -> tuple[subprocess.CompletedProcess, dict[str, bytes]]:
    out = tmp_path / name
    out.mkdir()
    formats = {"json": out / "r.json", "sarif": out / "r.sarif", "html": out / "r.html"}
    flags = [f"--format={kind}={path}" for kind, path in formats.items()]
    proc = subprocess.run(
        [EXE, "scan", *args, *flags, "--format=text"], capture_output=True, text=True, cwd=REPO, check=False
    )
    reports = {kind: path.read_bytes() for kind, path in formats.items() if path.exists()}
    return proc, reports


def _undated(report: bytes) -> bytes:
    """The report without the minute the HTML says it was generated in."""
    return re.sub(rb"<dt>Generated</dt><dd>[^<]*</dd>", b"", report)


def _same_scan(tmp_path: Path, *args: str) -> dict:
    serial, serial_reports = _scan(tmp_path, "serial", *args, "--jobs", "1")
    forked, forked_reports = _scan(tmp_path, "forked", *args, "--jobs", "3")
    assert forked.returncode == serial.returncode
    assert forked.stdout == serial.stdout
    assert forked.stderr == serial.stderr
    assert set(forked_reports) == {"json", "sarif", "html"}
    for kind, content in serial_reports.items():
        assert _undated(forked_reports[kind]) == _undated(content), kind
    return json.loads(serial_reports["json"])


def test_examples_in_three_processes_are_the_single_process_scan(tmp_path):
    report = _same_scan(tmp_path, str(EXAMPLES), "--config", str(EXAMPLES / "ib-audit.toml"))
    # Not an empty comparison: the examples fire rules, suppress some and cannot verify others.
    assert report["findings"] and report["unverified"]
    assert any(f["suppressed"] for f in report["findings"]) or report["summary"].get("suppressed")


def test_errors_and_missing_paths_keep_their_place(tmp_path):
    """Bad files, a missing path and good files in one scan: every error and finding
    appears where the serial scan puts it, and every good file is still audited."""
    data = tmp_path / "in"
    data.mkdir()
    shutil.copy(EXAMPLES / "public-ami.json", data / "a-public.json")
    (data / "b-broken.json").write_text('{"distributionConfiguration": {"distributions": [}')
    (data / "c-empty.json").write_text("[]")
    shutil.copy(EXAMPLES / "unencrypted-multi-region.json", data / "d-unencrypted.json")
    # A file's warning (a template with YAML aliases) comes back from its worker too.
    (data / "e-aliased.yaml").write_text(
        "Resources:\n"
        "  Golden:\n"
        "    Type: AWS::ImageBuilder::DistributionConfiguration\n"
        "    Properties:\n"
        "      Name: &name golden\n"
        "      Description: *name\n"
        "      Distributions: [{Region: us-east-1}]\n"
    )
    report = _same_scan(tmp_path, str(data / "a-public.json"), str(data / "nowhere.json"), str(data))
    assert [(w["kind"], w["location"]["file"]) for w in report["warnings"]] == [
        ("yaml-alias", str(data / "e-aliased.yaml"))
    ]
    # An empty list in a directory walk is skipped quietly, as in a serial scan.
    assert report["errors"] == [
        {"input": str(data / "nowhere.json"), "message": "no such file or directory"},
        {"input": str(data / "b-broken.json"), "message": "line 1, column 50: invalid JSON: Expecting value"},
    ]
    audited = {f["location"]["file"] for f in report["findings"]}
    assert audited == {str(data / "a-public.json"), str(data / "d-unencrypted.json")}


def test_verbose_lines_come_in_the_order_of_a_single_process_scan(tmp_path):
    """``-v`` lines, those the walk writes (a link, an empty file) and those the workers
    write while reading (a file no source accepts), come where a serial scan writes
    them, however the workers interleave."""
    data = tmp_path / "in"
    data.mkdir()
    for index in range(6):
        shutil.copy(EXAMPLES / "public-ami.json", data / f"{index}-public.json")
        (data / f"{index}-other.json").write_text('{"not": "a configuration"}')
    (data / "3-empty.json").write_text("")
    os.symlink(tmp_path, data / "4-link")
    report = _same_scan(tmp_path, str(data), "-v")
    assert len(report["findings"]) == 12
    serial = subprocess.run(
        [EXE, "scan", str(data), "-v", "--jobs", "1", "--fail-on", "never"], capture_output=True, text=True
    )
    skipped = [line.removeprefix("ib-audit: ") for line in serial.stderr.splitlines() if "skipped" in line]
    assert skipped == [
        f"{data / '0-other.json'}: skipped, not a distribution configuration",
        f"{data / '1-other.json'}: skipped, not a distribution configuration",
        f"{data / '2-other.json'}: skipped, not a distribution configuration",
        f"{data / '3-empty.json'}: skipped, empty file",
        f"{data / '3-other.json'}: skipped, not a distribution configuration",
        f"{data / '4-link'}: skipped, a symbolic link to a directory (not followed)",
        f"{data / '4-other.json'}: skipped, not a distribution configuration",
        f"{data / '5-other.json'}: skipped, not a distribution configuration",
    ]


def test_a_terraform_module_is_one_unit_of_work(tmp_path):
    """A module's files share its variables and its .tfvars: a broken .tfvars is one
    error, as in a serial scan, not one per worker that read a file of the module."""
    module = tmp_path / "module"
    module.mkdir()
    for index in range(4):
        (module / f"image{index}.tf").write_text(
            f'resource "aws_imagebuilder_distribution_configuration" "d{index}" {{\n'
            f'  name = "d{index}"\n'
            "  distribution {\n"
            "    region = var.region\n"
            '    ami_distribution_configuration { name = "golden-{{ imagebuilder:buildDate }}" }\n'
            "  }\n"
            "}\n"
        )
    (module / "variables.tf").write_text('variable "region" { default = "us-east-1" }\n')
    (module / "terraform.tfvars").write_text("region = \n")
    shutil.copy(EXAMPLES / "public-ami.json", tmp_path / "z-public.json")
    report = _same_scan(tmp_path, str(module), str(tmp_path / "z-public.json"))
    assert [e["message"] for e in report["errors"]] == ["line 2, column 1: invalid HCL: missing 'identifier'"]
    assert [t["name"] for t in report["targets"]][:4] == [f"d{index}" for index in range(4)]
    assert parallel.worth_forking(list(inputs([str(module)])), 4) == 1


def test_corpus_in_parallel_is_the_single_process_scan(tmp_path):
    if not CORPUS.is_dir():
        skip_or_fail(f"the shared corpus is not at {CORPUS}")
    report = _same_scan(tmp_path, str(CORPUS), "--fail-on", "never")
    assert len({f["location"]["file"] for f in report["findings"]}) > 10


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_jobs_must_be_a_positive_number_or_auto(value):
    proc = subprocess.run([EXE, "scan", str(EXAMPLES), "--jobs", value], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "--jobs" in proc.stderr and "Traceback" not in proc.stderr


def test_auto_forks_only_for_scans_worth_it(tmp_path):
    small = [(tmp_path / f"{i}.json", False) for i in range(10)]
    for path, _ in small:
        path.write_text("{}")
    assert parallel.worth_forking(small, None) == 1  # 20 bytes: not worth a process
    big = tmp_path / "big.json"
    big.write_bytes(b" " * parallel.AUTO_MIN_BYTES)
    items = [*small, (big, False)]
    assert parallel.worth_forking(items, None) == min(parallel.auto_jobs(), len(items))
    assert parallel.worth_forking(items[:2], 8) == 2  # never more processes than files
    assert parallel.worth_forking([error_target("gone.json", "no such file"), (big, False)], None) == 1


def test_without_working_semaphores_the_scan_runs_in_one_process(tmp_path):
    """Where the pool cannot be made (no sem_open, as in AWS Lambda, which has no
    /dev/shm), the scan says so once and audits everything in one process."""
    out = tmp_path / "r.json"
    code = (
        "import sys\n"
        "sys.modules['_multiprocessing'] = None  # what a platform without sem_open lacks\n"
        "from auditor.cli import main\n"
        f"sys.exit(main(['scan', {str(EXAMPLES)!r}, '--config', {str(EXAMPLES / 'ib-audit.toml')!r},"
        f" '--jobs', '2', '-f', 'json={out}']))\n"
    )
    # -P: from the repository root, "-c" would import the source tree, not the installed package.
    proc = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    serial, serial_reports = _scan(tmp_path, "serial", str(EXAMPLES), "--config", str(EXAMPLES / "ib-audit.toml"))
    assert proc.returncode == serial.returncode == 1, proc.stderr
    assert "cannot start worker processes" in proc.stderr and "scanning in one" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads(out.read_text())["findings"] == json.loads(serial_reports["json"])["findings"]


def test_a_worker_that_dies_ends_the_scan_with_one_clear_error(tmp_path):
    """A worker killed mid-file (as by the kernel's out-of-memory killer) must not leave
    the scan waiting forever for a file that will never come back."""
    files = []
    for name in ("a", "b", "c"):
        path = tmp_path / f"{name}.json"
        shutil.copy(EXAMPLES / "public-ami.json", path)
        files.append((path, False))

    def on_file(targets, display, text):
        if display.endswith("b.json"):
            os._exit(9)
        return targets

    class NothingRecorded:
        def take(self):
            return ()

        def put(self, recorded):
            pass

    from auditor.plugins import PluginHost

    sources = PluginHost().file_sources()
    with pytest.raises(parallel.WorkerDied, match="rerun with --jobs 1"):
        parallel.load_in_workers(files, sources, 10_000_000, jobs=2, on_file=on_file, recorder=NothingRecorded())
