"""Suppressions that can be governed: every form, several ids, trailing comments, warnings
that name their place, expiry, require-reason, unused ones, and the switches that let a
security team ignore them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from sarif_checks import multitool_problems, schema_errors

from auditor.cli import main

from conftest import EXAMPLES

NAME = "/distributions/0/amiDistributionConfiguration/name"
AMI0 = "/distributions/0/amiDistributionConfiguration"
PUBLIC0 = "/distributions/0/amiDistributionConfiguration/launchPermission/userGroups/0"

TERRAFORM = """\
# ib-audit:ignore IBD001,IBD009 keys come from the landing zone until=2999-12-31
resource "aws_imagebuilder_distribution_configuration" "commas" {
  name = "commas"
  distribution {
    region = "us-east-1"
    ami_distribution_configuration {
      name = "fixed"
    }
  }
}

resource "aws_imagebuilder_distribution_configuration" "spaces" {
  # ib-audit:ignore IBD001 IBD009 reviewed in SEC-7
  name = "spaces"
  distribution {
    region = "us-east-1"
    ami_distribution_configuration {
      name = "fixed"
    }
  }
}

resource "aws_imagebuilder_distribution_configuration" "trailing" {
  name        = "trailing"
  description = "not a comment # ib-audit:ignore IBD002"
  distribution {
    region = "us-east-1"
    ami_distribution_configuration { # ib-audit:ignore IBD001 the pipeline sets the key
      name = "fixed" // ib-audit:ignore IBD009
      launch_permission {
        user_groups = ["all"]
      }
    }
  }
  distribution {
    region = "eu-west-1"
    ami_distribution_configuration {
      name = "fixed"
      description = <<EOT
      # ib-audit:ignore IBD002 inside a heredoc is text
EOT
    }
  }
}

resource "aws_imagebuilder_distribution_configuration" "broken" {
  # ib-audit:ignore IBD999 a typo
  # ib-audit:ignore because reasons
  # ib-audit:ignore IBD009 until=2000-01-01 it was temporary
  # ib-audit:ignore IBD001 until=2026-02-30 no such day
  name = "broken"
  distribution {
    region = "us-east-1"
    ami_distribution_configuration {
      name = "fixed"
    }
  }
}
"""


def line_of(text: str, needle: str) -> int:
    """The line of the first occurrence: expected lines come from the file, not the tool."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def column_of(text: str, needle: str) -> int:
    return text.splitlines()[line_of(text, needle) - 1].index(needle) + 1


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    def go(*args: str):
        monkeypatch.chdir(tmp_path)
        code = main(["scan", *args, "-f", "json=report.json", "-f", "text"])
        captured = capsys.readouterr()
        return code, json.loads((tmp_path / "report.json").read_text()), captured.out, captured.err

    return go


def _built_elsewhere(tmp_path: Path) -> None:
    """The configurations below are built in eu-west-3: each distribution is a copy, so
    IBD001 applies to it (kmsKeyId does not apply to the original AMI in the own region)."""
    (tmp_path / ".ib-audit.toml").write_text('owner-region = "eu-west-3"\n')


def _by_target(report):
    out = {}
    for f in report["findings"]:
        suppressed = f["suppressed"]["reason"] if f["suppressed"] else None
        out.setdefault(f["target"].split("#")[-1].rsplit(".", 1)[-1], []).append((f["rule_id"], f["path"], suppressed))
    return out


TERRAFORM_JSON = """\
{
  "resource": {
    "aws_imagebuilder_distribution_configuration": {
      "commented": {
        "//": "ib-audit:ignore IBD009 names come from the pipeline",
        "name": "commented",
        "distribution": [
          {
            "region": "us-east-1",
            "ami_distribution_configuration": {
              "//": ["a note, not a suppression", "ib-audit:ignore IBD001 until=2000-01-01 it was temporary"],
              "name": "fixed"
            }
          }
        ]
      },
      "plain": {
        "//": "a note that mentions ib-audit:ignore IBD009 in passing is not a suppression",
        "name": "plain",
        "distribution": {"region": "us-east-1", "ami_distribution_configuration": {"name": "fixed"}}
      }
    }
  }
}
"""


def test_terraform_json_comments(run, tmp_path):
    """Terraform's JSON syntax has no comments but ignores a "//" property: an
    ib-audit:ignore there suppresses for the resource, and is governed like a # comment."""
    _built_elsewhere(tmp_path)
    (tmp_path / "main.tf.json").write_text(TERRAFORM_JSON)
    code, report, _, err = run("main.tf.json", "--select", "IBD001,IBD009")
    assert _by_target(report) == {
        "commented": [("IBD001", AMI0, None), ("IBD009", NAME, "names come from the pipeline")],
        "plain": [("IBD001", AMI0, None), ("IBD009", NAME, None)],
    }
    line = line_of(TERRAFORM_JSON, "until=2000-01-01")
    column = column_of(TERRAFORM_JSON, '"ib-audit:ignore IBD001') + 1
    assert report["warnings"] == [
        {
            "kind": "expired-suppression",
            "message": "suppression of IBD001 expired on 2000-01-01; its findings are active again",
            "location": {
                "file": "main.tf.json",
                "start_line": line,
                "start_column": column,
                "end_line": line,
                "end_column": column,
            },
        }
    ]
    assert f"ib-audit: warning: main.tf.json:{line}:{column}: suppression of IBD001 expired" in err
    assert code == 1


def test_terraform_comments(run, tmp_path):
    _built_elsewhere(tmp_path)
    (tmp_path / "main.tf").write_text(TERRAFORM)
    code, report, out, err = run("main.tf", "--select", "IBD001,IBD002,IBD009")
    found = _by_target(report)
    # Several ids, comma-separated, above the resource; the until= date is not part of the reason.
    assert found["commas"] == [
        ("IBD001", AMI0, "keys come from the landing zone"),
        ("IBD009", NAME, "keys come from the landing zone"),
    ]
    # Space-separated, inside the resource.
    assert found["spaces"] == [("IBD001", AMI0, "reviewed in SEC-7"), ("IBD009", NAME, "reviewed in SEC-7")]
    # Trailing comments cover their own line only; the second distribution is not covered,
    # and neither a "#" inside a string nor a heredoc line is a comment.
    assert found["trailing"] == [
        ("IBD001", AMI0, "the pipeline sets the key"),
        ("IBD009", NAME, "Terraform comment ib-audit:ignore"),
        ("IBD002", PUBLIC0, None),
        ("IBD001", "/distributions/1/amiDistributionConfiguration", None),
        ("IBD009", "/distributions/1/amiDistributionConfiguration/name", None),
    ]
    # Broken entries never suppress; each is a warning naming its line.
    assert found["broken"] == [("IBD001", AMI0, None), ("IBD009", NAME, None)]
    assert report["warnings"] == [
        {
            "kind": kind,
            "message": message,
            "location": {
                "file": "main.tf",
                "start_line": line_of(TERRAFORM, needle),
                "start_column": 3,
                "end_line": line_of(TERRAFORM, needle),
                "end_column": 3,
            },
        }
        for kind, needle, message in [
            ("unknown-rule", "IBD999", "unknown rule id 'IBD999' in comment ib-audit:ignore"),
            (
                "malformed-suppression",
                "because reasons",
                "malformed comment ib-audit:ignore: expected rule ids after ib-audit:ignore, got 'because'; "
                "it does not apply",
            ),
            (
                "expired-suppression",
                "until=2000-01-01",
                "suppression of IBD009 expired on 2000-01-01; its findings are active again",
            ),
            (
                "malformed-suppression",
                "2026-02-30",
                "malformed comment ib-audit:ignore: until=2026-02-30 is not a valid date; it does not apply",
            ),
        ]
    ]
    jsonschema.validate(report, json.loads((Path(__file__).parent / "schemas" / "report-v1.schema.json").read_text()))
    line = line_of(TERRAFORM, "IBD999")
    assert f"ib-audit: warning: main.tf:{line}:3: unknown rule id 'IBD999' in comment ib-audit:ignore\n" in err
    # Warnings do not change the exit code; the active findings do.
    assert code == 1
    assert ", 4 warning(s) on stderr." in out


CFN = """\
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Metadata:
      ib-audit:
        ignore:
          - id: IBD009
            reason: the pipeline names each AMI
            until: "2999-12-31"
          - IBD002
          - id: IBD001
            reason: was accepted for a quarter
            until: "2000-01-01"
          - id: IBD999
            reason: typo
          - idd: IBD013
          - 42
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            Name: fixed
            LaunchPermissionConfiguration:
              UserGroups: [all]
"""


def test_cloudformation_metadata(run, tmp_path):
    _built_elsewhere(tmp_path)
    (tmp_path / "stack.yaml").write_text(CFN)
    code, report, _, _ = run("stack.yaml", "--select", "IBD001,IBD002,IBD009")
    assert _by_target(report)["Golden"] == [
        ("IBD001", AMI0, None),  # expired
        ("IBD009", NAME, "the pipeline names each AMI"),
        ("IBD002", PUBLIC0, "CloudFormation Metadata ib-audit"),
    ]
    warnings = [(w["kind"], w["location"]["start_line"], w["message"]) for w in report["warnings"]]
    assert warnings == [
        (
            "expired-suppression",
            line_of(CFN, "id: IBD001"),
            "suppression of IBD001 expired on 2000-01-01; its findings are active again",
        ),
        ("unknown-rule", line_of(CFN, "id: IBD999"), "unknown rule id 'IBD999' in Metadata ib-audit"),
        (
            "malformed-suppression",
            line_of(CFN, "idd: IBD013"),
            "malformed Metadata ib-audit: unknown key 'idd' (expected id, reason, until); it does not apply",
        ),
        (
            "malformed-suppression",
            line_of(CFN, "- 42"),
            "malformed Metadata ib-audit: an entry must be a rule id or {id, reason}; it does not apply",
        ),
    ]
    assert {w["location"]["file"] for w in report["warnings"]} == {"stack.yaml"}
    assert code == 1


def _tagged(tmp_path: Path, tag: str) -> str:
    doc = json.loads((EXAMPLES / "public-ami.json").read_text())
    doc["distributionConfiguration"]["tags"] = {"owner": "x", "ib-audit:ignore": tag}
    text = json.dumps(doc, indent=2)
    (tmp_path / "public.json").write_text(text)
    return text


def test_tag_entries(run, tmp_path):
    text = _tagged(tmp_path, "IBD009:until=2000-01-01 rename pending,IBD999,IBD 002:spaces,IBD002:accepted (SEC-9)")
    code, report, _, err = run("public.json")
    assert [(f["rule_id"], f["suppressed"]) for f in report["findings"]] == [
        ("IBD009", None),
        ("IBD002", {"kind": "tag", "reason": "accepted (SEC-9)"}),
    ]
    line = line_of(text, '"ib-audit:ignore"')
    column = column_of(text, '"IBD009:until')  # the tag's value
    assert [(w["kind"], w["location"]["start_line"], w["location"]["start_column"]) for w in report["warnings"]] == [
        ("expired-suppression", line, column),
        ("unknown-rule", line, column),
        ("malformed-suppression", line, column),
    ]
    assert report["warnings"][2]["message"] == (
        "malformed tag ib-audit:ignore: 'IBD 002' is not a rule id (expected ID or ID:reason, comma-separated); "
        "it does not apply"
    )
    assert err.count("ib-audit: warning: public.json:") == 3
    assert code == 1  # IBD009 is active again


def test_require_reason(run, tmp_path):
    _tagged(tmp_path, "IBD002,IBD009:names are unique per account")
    (tmp_path / ".ib-audit.toml").write_text("require-reason = true\n")
    code, report, _, _ = run("public.json")
    assert [(f["rule_id"], f["suppressed"] is None) for f in report["findings"]] == [
        ("IBD009", False),
        ("IBD002", True),
    ]
    assert [w["message"] for w in report["warnings"]] == [
        "suppression of IBD002 has no reason (require-reason is on); it does not apply"
    ]
    assert code == 1
    (tmp_path / ".ib-audit.toml").write_text("require-reason = false\n")
    assert run("public.json")[0] == 0


def test_unused_suppressions_are_reported_on_request(run, tmp_path):
    (tmp_path / "main.tf").write_text(
        "# ib-audit:ignore IBD013 no containers here\n"
        "# ib-audit:ignore IBD010 tags rule is off\n"
        "# ib-audit:ignore IBD009 really needed\n"
        'resource "aws_imagebuilder_distribution_configuration" "x" {\n'
        '  name = "images"\n'
        "  distribution {\n"
        '    region = "us-east-1"\n'
        "    ami_distribution_configuration {\n"
        '      name = "fixed"\n'
        '      kms_key_id = "alias/team"\n'
        "    }\n"
        "  }\n"
        "}\n"
    )
    quiet = run("main.tf")[1]
    assert quiet["warnings"] == []
    code, report, _, _ = run("main.tf", "--report-unused-suppressions", "--ignore", "IBD010")
    assert [(w["kind"], w["location"]["start_line"], w["message"]) for w in report["warnings"]] == [
        ("unused-suppression", 1, "unused suppression of IBD013 in comment ib-audit:ignore: nothing to suppress"),
        (
            "unused-suppression",
            2,
            "unused suppression of IBD010 in comment ib-audit:ignore: nothing to suppress (IBD010 is not enabled)",
        ),
    ]
    assert code == 0  # a warning is not a finding


def test_security_team_can_ignore_inline_suppressions(run, tmp_path):
    """--no-inline-suppressions: tags, Metadata and comments count for nothing; the team's own
    per-path-ignores and baseline still apply."""
    _tagged(tmp_path, "IBD002:the developers think it is fine,IBD009:also this")
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "old.json").write_text(
        (EXAMPLES / "public-ami.json").read_text().replace("community", "old")
    )
    (tmp_path / "team.toml").write_text('[per-path-ignores]\n"legacy/" = ["IBD009"]\n')
    code, report, _, _ = run(".", "--config", "team.toml", "--no-inline-suppressions")
    assert [(f["target"], f["rule_id"], f["suppressed"]) for f in report["findings"]] == [
        ("legacy/old.json", "IBD009", {"kind": "config", "reason": 'per-path-ignores "legacy/" in team.toml'}),
        ("legacy/old.json", "IBD002", None),
        ("public.json", "IBD009", None),
        ("public.json", "IBD002", None),
    ]
    assert report["warnings"] == []
    assert code == 1
    main(["scan", ".", "--config", "team.toml", "--no-inline-suppressions", "--write-baseline", "base.json"])
    code, report, _, _ = run(".", "--config", "team.toml", "--no-inline-suppressions", "--baseline", "base.json")
    assert {f["suppressed"]["kind"] for f in report["findings"]} == {"config", "baseline"}
    assert code == 0


def test_suppressed_findings_hidden_from_text_but_kept_in_json_and_sarif(run, tmp_path):
    _tagged(tmp_path, "IBD002:accepted (SEC-9)")
    code, report, out, _ = run("public.json", "-f", "sarif=out.sarif")
    assert "IBD002" not in out.split("\n\n")[0]  # the findings part of the text report
    assert "public.json:10:19: IBD009 [medium]" in out
    assert ", 1 suppressed (--show-suppressed lists them)." in out
    assert [f["suppressed"] for f in report["findings"] if f["rule_id"] == "IBD002"] == [
        {"kind": "tag", "reason": "accepted (SEC-9)"}
    ]
    log = json.loads((tmp_path / "out.sarif").read_text())
    (public,) = [r for r in log["runs"][0]["results"] if r["ruleId"] == "IBD002"]
    assert public["suppressions"] == [{"kind": "inSource", "status": "accepted", "justification": "accepted (SEC-9)"}]
    _, _, shown, _ = run("public.json", "--show-suppressed")
    assert "IBD002 [critical] AMI distributed to us-east-1 is public" in shown
    assert "[suppressed: accepted (SEC-9)]" in shown
    assert code == 1


def test_warnings_in_sarif_pass_the_schema_and_the_multitool(run, tmp_path):
    _built_elsewhere(tmp_path)
    (tmp_path / "main.tf").write_text(TERRAFORM)
    run("main.tf", "-f", "sarif=out.sarif")
    log = json.loads((tmp_path / "out.sarif").read_text())
    notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert [(n["level"], n["locations"][0]["physicalLocation"]["region"]["startLine"]) for n in notes] == [
        ("warning", line_of(TERRAFORM, "IBD999")),
        ("warning", line_of(TERRAFORM, "because reasons")),
        ("warning", line_of(TERRAFORM, "until=2000-01-01")),
        ("warning", line_of(TERRAFORM, "2026-02-30")),
    ]
    assert log["runs"][0]["invocations"][0]["executionSuccessful"] is True
    assert schema_errors(log) == []
    assert multitool_problems(tmp_path / "out.sarif", tmp_path) == []
