"""-f github (workflow commands) and -f gitlab (Code Quality JSON), parsed as their
consumers parse them; one fingerprint shared by every report."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest

from auditor.cli import main

from conftest import EXAMPLES

# The runner reads "::name key=value,key=value::message" and unescapes, in this order,
# %0D, %0A, %3A, %2C (properties only) and %25 (GitHub's runner, ActionCommand.cs).
COMMAND = re.compile(r"^::(?P<name>[a-z-]+)(?: (?P<props>[^:]*))?::(?P<message>.*)$")


def _unescape(text: str, prop: bool) -> str:
    pairs = [("%0D", "\r"), ("%0A", "\n")] + ([("%3A", ":"), ("%2C", ",")] if prop else []) + [("%25", "%")]
    for escaped, char in pairs:
        text = text.replace(escaped, char)
    return text


def parse_commands(output: str) -> list[tuple[str, dict[str, str], str]]:
    out = []
    for line in output.splitlines():
        match = COMMAND.match(line)
        if match is None:
            assert not line.startswith("::"), line
            continue
        props = {}
        for pair in (match.group("props") or "").split(","):
            if pair:
                key, _, value = pair.partition("=")
                props[key] = _unescape(value, prop=True)
        out.append((match.group("name"), props, _unescape(match.group("message"), prop=False)))
    return out


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(capsys, *args):
    code = main(["scan", *args])
    captured = capsys.readouterr()
    return code, captured.out


def test_github_annotations(repo, capsys):
    shutil.copy(EXAMPLES / "public-ami.json", repo / "public-ami.json")
    tagged = json.loads((EXAMPLES / "public-ami.json").read_text())
    tagged["distributionConfiguration"]["arn"] += "-tagged"
    tagged["distributionConfiguration"]["tags"] = {"ib-audit:ignore": "IBD002:accepted,IBD999"}
    (repo / "tagged.json").write_text(json.dumps(tagged, indent=2))
    (repo / "broken.json").write_text('{"distributions": [')
    code, out = _run(capsys, ".", "-f", "github")
    assert code == 2
    commands = parse_commands(out)
    text = (repo / "tagged.json").read_text()
    tag_line = next(i for i, line in enumerate(text.splitlines(), 1) if '"ib-audit:ignore"' in line)
    tag_column = text.splitlines()[tag_line - 1].index('"IBD002:') + 1
    name_message = (
        "AMI name 'community-demo' is the same for every build; add {{ imagebuilder:buildDate }} "
        "(configuration community-image)"
    )
    assert commands == [
        (
            "warning",
            {
                "file": "public-ami.json",
                "line": "10",
                "endLine": "10",
                "col": "19",
                "endColumn": "35",
                "title": "IBD009 ami-name-not-unique [medium]",
            },
            name_message,
        ),
        (
            "error",
            {
                "file": "public-ami.json",
                "line": "13",
                "endLine": "13",
                "col": "47",
                "endColumn": "52",
                "title": "IBD002 ami-public-launch-permission [critical]",
            },
            "AMI distributed to us-east-1 is public (userGroups contains 'all'); remove it "
            "(configuration community-image)",
        ),
        # The suppressed IBD002 in tagged.json is not annotated.
        (
            "warning",
            {
                "file": "tagged.json",
                "line": "10",
                "endLine": "10",
                "col": "19",
                "endColumn": "35",
                "title": "IBD009 ami-name-not-unique [medium]",
            },
            name_message,
        ),
        (
            "error",
            {"file": "broken.json", "title": "ib-audit could not audit an input"},
            "broken.json: line 1, column 20: invalid JSON: Expecting value",
        ),
        # A warning about a suppression is annotated on the suppression.
        (
            "warning",
            {
                "file": "tagged.json",
                "line": str(tag_line),
                "endLine": str(tag_line),
                "col": str(tag_column),
                "endColumn": str(tag_column + len('"IBD002:accepted,IBD999"')),
                "title": "ib-audit warning",
            },
            "unknown rule id 'IBD999' in tag ib-audit:ignore",
        ),
    ]
    assert out.splitlines()[-1] == "ib-audit: 3 finding(s), 1 suppressed; incomplete: some inputs could not be audited"


def test_github_escaping_cannot_break_out_of_a_command(repo, capsys):
    """Values from a configuration and file names reach messages and properties: %, CR and LF
    (and : , in properties) are escaped, so each finding stays one command."""
    hostile_region = "us-east-1\n::error file=x.tf::forged%0A\r"
    doc = {"name": "n", "distributions": [{"region": "us-east-1"}, {"region": hostile_region}]}
    name = "odd:name,with%.json"
    (repo / name).write_text(json.dumps(doc))
    (repo / "policy.toml").write_text('[rules.IBD011]\nallowed-regions = ["us-east-1"]\n')
    _, out = _run(capsys, name, "--select", "IBD011", "--config", "policy.toml", "-f", "github")
    # Two findings on the region (not a region AWS has; not in allowed-regions), one summary line.
    lines = out.splitlines()
    assert len(lines) == 3 and all(line.startswith("::warning file=odd%3Aname%2Cwith%25.json,") for line in lines[:2])
    commands = parse_commands(out)
    assert [(level, props["file"]) for level, props, _ in commands] == [("warning", name), ("warning", name)]
    assert any(hostile_region in message for _, _, message in commands)
    assert "%0A::error" in out and not any("\r" in line for line in lines)


GITLAB_SCHEMA = {
    # GitLab's documented fields ("Code Quality report format"), all required.
    "type": "array",
    "items": {
        "type": "object",
        "required": ["description", "check_name", "fingerprint", "severity", "location"],
        "properties": {
            "description": {"type": "string", "minLength": 1},
            "check_name": {"type": "string", "minLength": 1},
            "fingerprint": {"type": "string", "minLength": 1},
            "severity": {"enum": ["info", "minor", "major", "critical", "blocker"]},
            "location": {
                "type": "object",
                "required": ["path", "lines"],
                "properties": {
                    "path": {"type": "string", "pattern": "^[^/]"},
                    "lines": {
                        "type": "object",
                        "required": ["begin"],
                        "properties": {"begin": {"type": "integer", "minimum": 1}},
                    },
                },
            },
        },
    },
}


def test_gitlab_code_quality(repo, capsys):
    shutil.copytree(EXAMPLES, repo / "examples")
    code, out = _run(capsys, "examples/", "-f", "gitlab", "-f", "json=r.json")
    assert code == 1
    issues = json.loads(out)
    jsonschema.validate(issues, GITLAB_SCHEMA)
    report = json.loads(Path("r.json").read_text())
    active = [f for f in report["findings"] if f["suppressed"] is None]
    severities = {"critical": "blocker", "high": "critical", "medium": "major", "low": "minor", "info": "info"}
    assert [
        (i["check_name"], i["location"]["path"], i["location"]["lines"]["begin"], i["severity"]) for i in issues
    ] == [(f["rule_id"], f["location"]["file"], f["location"]["start_line"], severities[f["severity"]]) for f in active]
    # GitLab keeps one issue per fingerprint: they must be unique.
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    public = [i for i in issues if i["location"]["path"] == "examples/public-ami.json"]
    assert public == [
        {
            "description": "IBD009 AMI name 'community-demo' is the same for every build; add "
            "{{ imagebuilder:buildDate }} (configuration community-image)",
            "check_name": "IBD009",
            "fingerprint": public[0]["fingerprint"],
            "severity": "major",
            "location": {"path": "examples/public-ami.json", "lines": {"begin": 10}},
            "categories": ["Security"],
            "type": "issue",
        },
        {
            "description": "IBD002 AMI distributed to us-east-1 is public (userGroups contains 'all'); remove it "
            "(configuration community-image)",
            "check_name": "IBD002",
            "fingerprint": public[1]["fingerprint"],
            "severity": "blocker",
            "location": {"path": "examples/public-ami.json", "lines": {"begin": 13}},
            "categories": ["Security"],
            "type": "issue",
        },
    ]


def test_one_fingerprint_feeds_every_report(repo, capsys):
    """The JSON fingerprint is SARIF's partialFingerprint, GitLab's fingerprint, the HTML
    anchor and what a merge keeps."""
    shutil.copytree(EXAMPLES, repo / "examples")
    main(
        ["scan", "examples/", "-f", "json=r.json", "-f", "sarif=r.sarif", "-f", "gitlab=r.gl.json", "-f", "html=r.html"]
    )
    main(["merge", "r.json", "-f", "json=merged.json"])
    capsys.readouterr()
    findings = json.loads(Path("r.json").read_text())["findings"]
    prints = sorted(f["fingerprint"] for f in findings)
    sarif = json.loads(Path("r.sarif").read_text())["runs"][0]["results"]
    assert sorted(r["partialFingerprints"]["ibAuditFingerprint/v2"] for r in sarif) == prints
    active = sorted(f["fingerprint"] for f in findings if f["suppressed"] is None)
    assert sorted(i["fingerprint"] for i in json.loads(Path("r.gl.json").read_text())) == active
    html = Path("r.html").read_text()
    assert sorted(re.findall(r'<tr class="(?:finding|suppressed)" id="f-([0-9a-f]{32})"', html)) == prints
    assert all(f'href="#f-{fp}"' in html for fp in active)
    assert sorted(f["fingerprint"] for f in json.loads(Path("merged.json").read_text())["findings"]) == prints
