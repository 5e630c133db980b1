"""CloudFormation and Terraform: every rule fires at the same canonical path as in JSON,
on the line where the writer put the offending property; intrinsics and references stay
unresolved; suppressions; plan files; the real-world corpus."""

from __future__ import annotations

import json
import tomllib

import pytest
from iac_writer import _pascal, to_cloudformation, to_terraform

from auditor import apimodel
from auditor.rules import BUILTIN_RULES

from conftest import CORPUS, FIXTURES, skip_or_fail

RULE_DIR = FIXTURES / "rules"
# Account-context rules need AWS: their cases run against moto in test_context.py.
RULE_IDS = sorted(r.id for r in BUILTIN_RULES if not r.retired and not r.needs_aws_context())
WRITERS = {"cloudformation": (to_cloudformation, "template.yaml"), "terraform": (to_terraform, "main.tf")}


def _policy(tmp_path, rule_id, options):
    path = tmp_path / "policy.toml"
    path.write_text(f"[rules.{rule_id}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items()))
    return str(path)


def _expected_path(rule_id: str, path: str, fmt: str) -> str:
    # Unknown members keep the spelling the author wrote; in CloudFormation that is PascalCase.
    if rule_id == "IBD016" and fmt == "cloudformation":
        head, _, last = path.rpartition("/")
        return f"{head}/{_pascal(last)}"
    return path


def _sent(config: dict, path: str, fmt: str) -> bool:
    """Whether the value at ``path`` reaches Image Builder when written in ``fmt``.

    CloudFormation cannot set members its resource schema lacks (a Distribution has no
    S3ExportConfiguration, the resource no TimeoutMinutes): they are IBD016 findings, never
    evaluated. The Terraform provider never sends a max_parallel_launches or
    target_resource_count of 0 (its expand functions check ``v != 0``).
    """
    from auditor._cfn_schema import PROPERTIES

    tokens = path.split("/")[1:]
    if fmt == "cloudformation":
        shape = "DistributionConfiguration"
        for token in tokens:
            if token.isdigit():
                continue
            table = PROPERTIES.get(shape)
            if table is None:
                return True
            if token not in {api for api, _kind in table.values()}:
                return False
            member = apimodel.members(shape)[token]
            spec = apimodel.shape(member)
            shape = spec["member"] if spec["type"] == "list" else member
        return True
    if fmt == "terraform" and tokens and tokens[-1] in ("maxParallelLaunches", "targetResourceCount"):
        value = config
        for token in tokens:
            value = value[int(token)] if isinstance(value, list) else value.get(token)
        return value != 0
    return True


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_rule_fires_at_the_same_path_and_the_written_line(rule_id, fmt, scan, tmp_path):
    case = tomllib.loads((RULE_DIR / rule_id / "case.toml").read_text())
    config = json.loads((RULE_DIR / rule_id / "fail.json").read_text())
    write, filename = WRITERS[fmt]
    text, lines = write(config)
    target = tmp_path / filename
    target.write_text(text)
    run = scan(str(target), "--select", rule_id, "--config", _policy(tmp_path, rule_id, case.get("options", {})))
    expected = sorted(
        (rule_id, _expected_path(rule_id, path, fmt), str(target), lines[path])
        for path, _line in case["expected"]
        if rule_id == "IBD016" or _sent(config, path, fmt)
    )
    assert sorted(run.findings()) == expected, text
    assert run.report["errors"] == []
    assert run.report["targets"][0]["origin"]["kind"] == fmt


CFN_UNRESOLVED = """\
Parameters:
  Key: {Type: String}
  Encrypt: {Type: String, AllowedValues: ["yes", "no"]}
Conditions:
  UseKey: !Equals [!Ref Encrypt, "yes"]
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Metadata:
      ib-audit:
        ignore:
          - id: IBD009
            reason: names are set by the pipeline
    Properties:
      Name: !Sub "${AWS::StackName}-golden"
      Distributions:
        - Region: !Ref AWS::Region
          AmiDistributionConfiguration:
            Name: !Sub "golden-{{ imagebuilder:buildDate }}"
            KmsKeyId: !Ref Key
            LaunchPermissionConfiguration:
              UserGroups: [!Ref Group]
        - Region: us-west-2
          AmiDistributionConfiguration:
            Name: fixed-name
            KmsKeyId:
              Fn::If: [UseKey, !Ref Key, !Ref AWS::NoValue]
            TargetAccountIds: !Split [",", !ImportValue Accounts]
"""


def test_cloudformation_intrinsics_are_unresolved_not_guessed(scan, tmp_path):
    """A parameter without a default, a resource reference and an import stay unresolved;
    the Fn::If is audited both ways, and the branch without a key is reported as such."""
    template = tmp_path / "stack.yaml"
    template.write_text(CFN_UNRESOLVED)
    run = scan(str(template), "--select", "IBD001,IBD002,IBD009")
    lines = CFN_UNRESOLVED.splitlines()
    second_ami = lines.index("        - Region: us-west-2") + 2
    assert run.findings() == [
        ("IBD001", "/distributions/1/amiDistributionConfiguration", str(template), second_ami),
        ("IBD009", "/distributions/1/amiDistributionConfiguration/name", str(template), second_ami + 1),
    ]
    messages = [f["message"] for f in run.report["findings"]]
    assert messages == [
        "AMI copy to us-west-2: no kmsKeyId; set a customer-managed KMS key (when condition UseKey is false)",
        "AMI name 'fixed-name' is the same for every build; add {{ imagebuilder:buildDate }}",
    ]
    assert run.report["findings"][1]["suppressed"] == {"kind": "inline", "reason": "names are set by the pipeline"}
    assert run.report["targets"][0]["id"] == f"{template}#Golden"
    assert run.report["targets"][0]["origin"] == {"kind": "cloudformation", "file": str(template), "resource": "Golden"}
    assert [(u["rule_id"], u["path"], u["reason"]) for u in run.report["unverified"]] == [
        ("IBD001", "/distributions/0/amiDistributionConfiguration/kmsKeyId", "KMS key is not a literal"),
        (
            "IBD001",
            "/distributions/1/amiDistributionConfiguration/kmsKeyId",
            "KMS key is not a literal (when condition UseKey is true)",
        ),
        (
            "IBD002",
            "/distributions/0/amiDistributionConfiguration/launchPermission/userGroups/0",
            "launch permission user group is not a literal",
        ),
    ]
    assert run.report["errors"] == []
    assert run.code == 1


TF_UNRESOLVED = """\
variable "kms" {}

# ib-audit:ignore IBD009 the name comes from the release train
resource "aws_imagebuilder_distribution_configuration" "golden" {
  name = "golden-${var.env}"

  distribution {
    region = var.region
    ami_distribution_configuration {
      name       = "fixed"
      kms_key_id = var.kms
      launch_permission {
        user_groups = [var.group]
      }
    }
  }

  dynamic "distribution" {
    for_each = var.regions
    content {
      region = distribution.value
      ami_distribution_configuration {
        kms_key_id = lookup(var.keys, distribution.value, null)
        launch_permission {
          user_groups = ["all"]
        }
      }
    }
  }
}
"""


def test_terraform_references_and_dynamic_blocks(scan, tmp_path):
    main_tf = tmp_path / "main.tf"
    main_tf.write_text(TF_UNRESOLVED)
    run = scan(str(main_tf))
    assert run.findings() == [
        ("IBD009", "/distributions/0/amiDistributionConfiguration/name", str(main_tf), 10),
        ("IBD002", "/distributions/1/amiDistributionConfiguration/launchPermission/userGroups/0", str(main_tf), 25),
    ]
    suppressed = {f["rule_id"]: f["suppressed"] for f in run.report["findings"]}
    assert suppressed == {
        "IBD009": {"kind": "inline", "reason": "the name comes from the release train"},
        "IBD002": None,
    }
    assert [(u["rule_id"], u["path"]) for u in run.report["unverified"]] == [
        ("IBD001", "/distributions/0/amiDistributionConfiguration/kmsKeyId"),
        ("IBD001", "/distributions/1/amiDistributionConfiguration/kmsKeyId"),
        ("IBD002", "/distributions/0/amiDistributionConfiguration/launchPermission/userGroups/0"),
    ]
    assert run.report["targets"][0]["origin"]["resource"] == "aws_imagebuilder_distribution_configuration.golden"


def test_terraform_plan_json_with_child_modules(scan, tmp_path):
    resource = {
        "address": "module.images.aws_imagebuilder_distribution_configuration.this",
        "type": "aws_imagebuilder_distribution_configuration",
        "name": "this",
        "values": {
            "name": "golden",
            "tags": None,
            "distribution": [
                {
                    "region": "us-east-1",
                    "ami_distribution_configuration": [
                        {
                            "name": "golden",
                            "kms_key_id": None,
                            "launch_permission": [{"user_groups": ["all"], "user_ids": []}],
                        }
                    ],
                    "fast_launch_configuration": [],
                }
            ],
        },
    }
    plan = {
        "format_version": "1.2",
        "planned_values": {"root_module": {"child_modules": [{"address": "module.images", "resources": [resource]}]}},
    }
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan, indent=2))
    run = scan(str(path))
    lines = path.read_text().splitlines()

    def line_of(needle: str, after: int = 0) -> int:
        return next(i for i, line in enumerate(lines, 1) if i > after and needle in line)

    ami = line_of('"ami_distribution_configuration"')
    # No key, but a plan does not say its region: us-east-1 may be the own region, where
    # kmsKeyId does not apply, so IBD001 could not verify it.
    assert [(u["rule_id"], u["path"]) for u in run.report["unverified"]] == [
        ("IBD001", "/distributions/0/amiDistributionConfiguration")
    ]
    assert run.findings() == [
        (
            "IBD009",
            "/distributions/0/amiDistributionConfiguration/name",
            str(path),
            line_of('"name": "golden"', after=ami),
        ),
        (
            "IBD002",
            "/distributions/0/amiDistributionConfiguration/launchPermission/userGroups/0",
            str(path),
            line_of('"all"'),
        ),
    ]
    assert run.report["targets"][0]["origin"] == {
        "kind": "terraform-plan",
        "file": str(path),
        "resource": "module.images.aws_imagebuilder_distribution_configuration.this",
    }


def test_odd_plan_json_is_not_a_crash(scan, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text('{"planned_values": ["aws_imagebuilder_distribution_configuration"]}')
    run = scan(str(plan))
    assert run.report["errors"] == [
        {"input": str(plan), "message": "not a recognised EC2 Image Builder distribution configuration"}
    ]


def test_parse_errors_name_file_line_and_column_and_the_rest_is_audited(scan, tmp_path):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("Resources:\n  X:\n    Type: AWS::ImageBuilder::DistributionConfiguration\n    Properties: [\n")
    bad_tf = tmp_path / "bad.tf"
    bad_tf.write_text('resource "aws_imagebuilder_distribution_configuration" "x" {\n  name = \n}\n')
    good, _ = to_terraform({"name": "ok", "distributions": [{"region": "us-east-1"}]}, "ok")
    (tmp_path / "good.tf").write_text(good)
    run = scan(str(tmp_path))
    messages = {e["input"].rsplit("/", 1)[-1]: e["message"] for e in run.report["errors"]}
    assert messages["bad.yaml"].startswith("line 5, column 1: invalid YAML: ")
    assert messages["bad.tf"] == "line 2, column 3: invalid HCL: unexpected input"  # "name =" has no value
    assert [t["id"].rsplit("/", 1)[-1] for t in run.report["targets"] if t["status"] == "audited"] == [
        "good.tf#aws_imagebuilder_distribution_configuration.ok"
    ]
    assert run.code == 2


# -- the real-world corpus ------------------------------------------------------------------------
@pytest.fixture
def corpus():
    if not (CORPUS / "cloudformation").is_dir():
        skip_or_fail(f"shared corpus not found at {CORPUS}")
    return CORPUS


def test_every_corpus_template_and_module_is_read(corpus, scan):
    run = scan(str(corpus / "cloudformation"), str(corpus / "terraform"), "--fail-on", "never")
    assert run.report["errors"] == []
    files = {t["origin"]["file"].rsplit("/", 1)[-1] for t in run.report["targets"]}
    expected = {p.name for p in (corpus / "cloudformation").iterdir()} | {
        p.name for p in (corpus / "terraform").iterdir()
    }
    assert files == expected
    assert all(t["status"] == "audited" for t in run.report["targets"])
    assert len(run.report["targets"]) == 17 + 46


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        (
            "cloudformation/aws-cdk__aws-cdk-imagebuilder-distribution-configuration-all-parameters.template.json",
            [("IBD002", 139), ("IBD002", 334)],
        ),
        (
            "cloudformation/aws-cloudformation-user-guide__aws-resource-imagebuilder-distributionconfiguration__1.yaml",
            [("IBD002", 16), ("IBD002", 17), ("IBD016", 42)],
        ),
        (
            "cloudformation/aws-cloudformation-user-guide__aws-resource-imagebuilder-distributionconfiguration__2.json",
            [("IBD016", 65)],
        ),
        (
            "cloudformation/build-and-deploy-docker-images-to-aws-using-ec2-image-builder__docker-image-builder.yml",
            [("IBD013", 153)],
        ),
        ("terraform/terraform-provider-aws__imagebuilder_distribution_configuration.html__1.tf", [("IBD016", 12)]),
        ("terraform/terraform-provider-aws__imagebuilder_distribution_configuration.html__2.tf", [("IBD015", 18)]),
        ("terraform/terraform-provider-aws__distribution_configuration_test__06.tf", [("IBD002", 9)]),
        ("terraform/terraform-provider-aws__distribution_configuration_test__11.tf", [("IBD001", 7)]),
        (
            "json/ec2-image-builder-user-guide__dist-using-launch-template.json",
            [("IBD015", 13), ("IBD015", 15), ("IBD015", 18), ("IBD015", 20)],
        ),
    ],
)
def test_corpus_files_yield_their_known_mistakes(corpus, scan, file, expected):
    """Pinned: the genuine mistakes in public examples, at their lines (read by eye)."""
    run = scan(str(corpus / file), "--select", ",".join(sorted({r for r, _ in expected})))
    assert sorted((r, line) for r, _p, _f, line in run.findings()) == sorted(expected)


def test_unknown_members_are_named_and_suggested_in_the_authors_format(scan, tmp_path):
    template = tmp_path / "typo.yaml"
    template.write_text(
        "Resources:\n  X:\n    Type: AWS::ImageBuilder::DistributionConfiguration\n    Properties:\n"
        "      Distributions:\n        - Region: us-east-1\n          AmiDistributionConfiguration:\n"
        "            LaunchPermissions:\n              UserIds: ['111122223333']\n            KmsKeyID: k\n"
        "    Tags:\n      owner: me\n"
    )
    module = tmp_path / "typo.tf"
    module.write_text(
        'resource "aws_imagebuilder_distribution_configuration" "x" {\n  distribution {\n    region = "us-east-1"\n'
        "    ami_distribution_configuration {\n      launch_permissions {\n        user_ids = []\n      }\n"
        '      kms_key = "k"\n    }\n  }\n}\n'
    )
    run = scan(str(template), str(module), "--select", "IBD016")
    assert sorted(f["message"] for f in run.report["findings"]) == sorted(
        [
            "'KmsKeyID' is not a member of AmiDistributionConfiguration; did you mean 'KmsKeyId'?",
            "'LaunchPermissions' is not a member of AmiDistributionConfiguration; did you mean 'LaunchPermissionConfiguration'?",
            "'Tags' is not a resource attribute: CloudFormation rejects the template (\"Invalid template resource property 'Tags'\"); move it into Properties",
            "'kms_key' is not a member of ami_distribution_configuration; did you mean 'kms_key_id'?",
            "'launch_permissions' is not a member of ami_distribution_configuration; did you mean 'launch_permission'?",
        ]
    )
