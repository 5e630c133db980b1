"""Terraform as the provider sends it: provider defaults, variables and tfvars, locals,
dynamic blocks, ``.tf.json``, plan unknowns and ``tags_all``, and state.

Expected lines are read off the files (``line_of``), never off the tool.
"""

from __future__ import annotations

import json
import textwrap

from conftest import line_of

AMI = "/distributions/0/amiDistributionConfiguration"
GROUP0 = f"{AMI}/launchPermission/userGroups/0"
# IBD002's note when the public AMI is an encrypted copy (the owner region is elsewhere).
ENCRYPTED = "; kmsKeyId encrypts this copy and EC2 cannot make an AMI with encrypted snapshots public, so it fails "
TYPE = "aws_imagebuilder_distribution_configuration"


def write(directory, name: str, text: str):
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path, path.read_text()


# -- provider defaults ---------------------------------------------------------------------------------
def test_provider_defaults_apply_as_the_provider_sends_them(scan, tmp_path, owner_policy):
    path, text = write(
        tmp_path,
        "main.tf",
        """\
        resource "aws_imagebuilder_distribution_configuration" "golden" {
          name = "golden"
          distribution {
            region = "us-east-1"
            ami_distribution_configuration {
              name       = "golden-{{ imagebuilder:buildDate }}"
              kms_key_id = ""
            }
            launch_template_configuration {
              launch_template_id = "lt-0123456789abcdef0"
              account_id         = "444455556666"
            }
            fast_launch_configuration {
              account_id            = "111122223333"
              enabled               = true
              max_parallel_launches = 0
              launch_template {
                launch_template_name = "fast"
              }
              snapshot_configuration {
                target_resource_count = 0
              }
            }
          }
        }
        """,
    )
    run = scan(str(path), "--select", "IBD001,IBD003,IBD015", "--config", owner_policy)
    assert run.whole() == [
        (
            "IBD001",
            AMI,
            str(path),
            line_of(text, "ami_distribution_configuration {"),
            "AMI copy to us-east-1: no kmsKeyId; set a customer-managed KMS key",
        ),
        (
            "IBD015",
            "/distributions/0/launchTemplateConfigurations/0",
            str(path),
            line_of(text, "launch_template_configuration {"),
            "leaves 'default' out, which means true, so it sets the default launch template version in account "
            "444455556666; set 'default' to false and let that account promote it",
        ),
    ]


# -- variables, tfvars, locals, dynamic blocks ---------------------------------------------------------------
MODULE = """\
resource "aws_imagebuilder_distribution_configuration" "golden" {
  name = local.name

  distribution {
    region = "us-east-1"
    ami_distribution_configuration {
      name       = "${local.name}-base"
      kms_key_id = var.kms
      launch_permission {
        user_groups = var.groups
      }
    }
  }

  dynamic "distribution" {
    for_each = var.regions
    content {
      region = distribution.key
      ami_distribution_configuration {
        name       = "copy-{{ imagebuilder:buildDate }}"
        kms_key_id = distribution.value
      }
    }
  }
}
"""
VARIABLES = """\
variable "kms" {
  default = "arn:aws:kms:us-east-1:111122223333:key/k"
}

variable "groups" {
  type    = list(string)
  default = []
}

variable "env" {}

variable "regions" {
  default = {
    "eu-west-1" = null
    "us-west-2" = "alias/images"
  }
}

locals {
  name = "golden-${var.env}"
}
"""


def test_variables_tfvars_locals_and_dynamic_blocks_resolve(scan, tmp_path, owner_policy):
    main, text = write(tmp_path, "main.tf", MODULE)
    write(tmp_path, "variables.tf", VARIABLES)
    write(tmp_path, "terraform.tfvars", 'env = "dev"\n')
    write(tmp_path, "z.auto.tfvars", 'env = "prod"\n')  # auto files win over terraform.tfvars
    run = scan(str(main), "--select", "IBD001,IBD002,IBD009", "--config", owner_policy)
    assert run.whole() == [
        (
            "IBD009",
            f"{AMI}/name",
            str(main),
            line_of(text, "${local.name}-base"),
            "AMI name 'golden-prod-base' is the same for every build; add {{ imagebuilder:buildDate }} "
            "(variable env = 'prod' (from z.auto.tfvars))",
        ),
        (
            "IBD001",
            "/distributions/1/amiDistributionConfiguration",
            str(main),
            line_of(text, "ami_distribution_configuration {", 2),
            "AMI copy to eu-west-1: no kmsKeyId; set a customer-managed KMS key "
            '(variable regions = {"eu-west-1": null, "us-west-2": "alias/images"} (its default))',
        ),
    ]
    assert run.report["targets"][0]["name"] == "golden-prod"
    assert run.report["errors"] == []


def test_var_files_override_in_order_and_findings_name_the_variable(scan, tmp_path, owner_policy):
    main, text = write(tmp_path, "main.tf", MODULE)
    write(tmp_path, "variables.tf", VARIABLES)
    shared, _ = write(tmp_path / "env", "shared.tfvars", 'groups = ["all"]\nenv = "a"\n')
    prod, _ = write(tmp_path / "env", "prod.tfvars.json", '{"kms": "alias/aws/ebs", "env": "b"}')
    run = scan(
        str(main),
        "--select",
        "IBD001,IBD002",
        "--var-file",
        str(shared),
        "--var-file",
        str(prod),
        "--config",
        owner_policy,
    )
    assert run.whole() == [
        (
            "IBD001",
            f"{AMI}/kmsKeyId",
            str(main),
            line_of(text, "kms_key_id = var.kms"),
            "AMI copy to us-east-1: the AWS-managed key 'alias/aws/ebs'; use a customer-managed KMS key "
            f"(variable kms = 'alias/aws/ebs' (from {prod}))",
        ),
        (
            "IBD002",
            GROUP0,
            str(main),
            line_of(text, "user_groups = var.groups"),
            "AMI distributed to us-east-1 is public (userGroups contains 'all'); remove it"
            f"{ENCRYPTED}"
            f'(variable groups = ["all"] (from {shared}))',
        ),
        (
            "IBD001",
            "/distributions/1/amiDistributionConfiguration",
            str(main),
            line_of(text, "ami_distribution_configuration {", 2),
            "AMI copy to eu-west-1: no kmsKeyId; set a customer-managed KMS key "
            '(variable regions = {"eu-west-1": null, "us-west-2": "alias/images"} (its default))',
        ),
    ]
    assert run.report["targets"][0]["name"] == "golden-b"


def test_what_stays_unresolved_is_listed(scan, tmp_path, owner_policy):
    main, _ = write(
        tmp_path,
        "main.tf",
        """\
        variable "groups" {}
        resource "aws_imagebuilder_distribution_configuration" "golden" {
          name = "golden"
          distribution {
            region = "us-east-1"
            ami_distribution_configuration {
              kms_key_id = aws_kms_key.images.arn
              launch_permission {
                user_groups = var.groups
              }
            }
          }
        }
        """,
    )
    run = scan(str(main), "--select", "IBD001,IBD002", "--config", owner_policy)
    assert run.whole() == []
    # A key the module creates (aws_kms_key) is customer managed whatever its ARN: IBD001
    # has nothing to verify there. The variable's groups are unknown.
    assert [(u["rule_id"], u["path"], u["reason"]) for u in run.report["unverified"]] == [
        ("IBD002", f"{AMI}/launchPermission/userGroups", "launch permission user group is not a literal"),
    ]


ALIASED_REGIONS = """\
provider "aws" {
  region = "us-east-1"
}
provider "aws" {
  alias  = "other"
  region = "eu-west-1"
}
data "aws_region" "current" {}
data "aws_region" "other" {
  provider = aws.other
}

resource "aws_imagebuilder_distribution_configuration" "both" {
  name = "both"
  distribution {
    region = data.aws_region.current.name
    ami_distribution_configuration {
      name = "both-{{ imagebuilder:buildDate }}"
    }
  }
  distribution {
    region = data.aws_region.other.name
    ami_distribution_configuration {
      name = "both-other-{{ imagebuilder:buildDate }}"
    }
  }
}

resource "aws_imagebuilder_distribution_configuration" "only_other" {
  name = "only-other"
  distribution {
    region = data.aws_region.other.name
    ami_distribution_configuration {
      name = "only-other-{{ imagebuilder:buildDate }}"
    }
  }
}

resource "aws_imagebuilder_distribution_configuration" "built_in_other" {
  provider = aws.other
  name     = "built-in-other"
  distribution {
    region = data.aws_region.other.name
    ami_distribution_configuration {
      name = "built-in-other-{{ imagebuilder:buildDate }}"
    }
  }
  distribution {
    region = data.aws_region.current.name
    ami_distribution_configuration {
      name = "built-in-other-current-{{ imagebuilder:buildDate }}"
    }
  }
}
"""


def _aliased_region_findings(main, text: str) -> list[tuple]:
    """What IBD001 reports on ALIASED_REGIONS: the two copies to a region read through a
    provider other than the resource's (lines read off the file, not off the tool)."""
    return [
        (
            "IBD001",
            "/distributions/1/amiDistributionConfiguration",
            str(main),
            line_of(text, "ami_distribution_configuration {", 2),
            "AMI copy to data.aws_region.other.name: no kmsKeyId; set a customer-managed KMS key",
        ),
        (
            "IBD001",
            "/distributions/1/amiDistributionConfiguration",
            str(main),
            line_of(text, "ami_distribution_configuration {", 5),
            "AMI copy to data.aws_region.current.name: no kmsKeyId; set a customer-managed KMS key",
        ),
    ]


def test_a_region_data_source_read_through_another_provider_is_not_the_own_region(scan, tmp_path, owner_policy):
    """``data.aws_region.x`` names the region of the provider configuration it reads
    through: with ``provider = aws.other`` that is another region than the resource's,
    unless the resource is created through ``aws.other`` too."""
    main, text = write(tmp_path, "main.tf", ALIASED_REGIONS)
    run = scan(str(main), "--select", "IBD001", "--config", owner_policy)
    assert run.whole() == _aliased_region_findings(main, text)
    # Alone, the aliased region may or may not be where the AMI is built: not verifiable.
    assert [(u["target"], u["rule_id"], u["path"], u["reason"]) for u in run.report["unverified"]] == [
        (
            f"{main}#{TYPE}.only_other",
            "IBD001",
            "/distributions/0/amiDistributionConfiguration",
            "no customer-managed kmsKeyId for data.aws_region.other.name: needed unless "
            "data.aws_region.other.name is the configuration's own region (unknown here: declare owner-region), "
            "where the key does not apply",
        )
    ]


def test_a_data_source_declared_in_the_resources_own_file_counts_first(scan, tmp_path, owner_policy):
    """A directory of unrelated files (which Terraform would reject as one module) may
    declare the same data source twice: the resource's own file says what it means."""
    main, text = write(tmp_path, "main.tf", ALIASED_REGIONS)
    write(tmp_path, "other.tf", 'data "aws_region" "current" {\n  provider = aws.elsewhere\n}\n')
    run = scan(str(main), "--select", "IBD001", "--config", owner_policy)
    assert run.whole() == _aliased_region_findings(main, text)


def test_tf_json_region_data_source_through_another_provider_is_not_the_own_region(scan, tmp_path, owner_policy):
    def distribution(region: str, name: str) -> dict:
        return {"region": region, "ami_distribution_configuration": {"name": name + "-{{ imagebuilder:buildDate }}"}}

    document = {
        "data": {"aws_region": {"current": {}, "other": {"provider": "aws.other"}}},
        "resource": {
            TYPE: {
                "both": {
                    "name": "both",
                    "distribution": [
                        distribution("${data.aws_region.current.name}", "both"),
                        distribution("${data.aws_region.other.name}", "both-other"),
                    ],
                }
            }
        },
    }
    main, text = write(tmp_path, "main.tf.json", json.dumps(document, indent=2))
    run = scan(str(main), "--select", "IBD001", "--config", owner_policy)
    assert run.whole() == [
        (
            "IBD001",
            "/distributions/1/amiDistributionConfiguration",
            str(main),
            line_of(text, '"ami_distribution_configuration"', 2),
            "AMI copy to ${data.aws_region.other.name}: no kmsKeyId; set a customer-managed KMS key",
        )
    ]


def test_bad_var_files_are_errors_and_the_scan_goes_on(scan, tmp_path):
    main, _ = write(tmp_path, "main.tf", MODULE)
    write(tmp_path, "variables.tf", VARIABLES)
    broken, _ = write(tmp_path, "broken.tfvars", "groups = [\n")
    run = scan(str(main), "--select", "IBD009", "--var-file", str(broken), "--var-file", str(tmp_path / "nope.tfvars"))
    assert run.report["errors"] == [  # in the order given
        {"input": str(broken), "message": "--var-file: line 1, column 1: invalid HCL: unexpected input"},
        {"input": str(tmp_path / "nope.tfvars"), "message": "--var-file: no such file"},
    ]
    assert [f[0] for f in run.whole()] == []  # env is unset: the name stays unresolved
    assert run.code == 2


def test_a_broken_var_file_is_one_error_however_many_modules_read_it(scan, tmp_path):
    for module in ("network", "images"):
        (tmp_path / module).mkdir()
        write(tmp_path / module, "main.tf", MODULE)
        write(tmp_path / module, "variables.tf", VARIABLES)
    broken, _ = write(tmp_path, "broken.tfvars", "groups = [\n")
    run = scan(str(tmp_path / "images"), str(tmp_path / "network"), "--var-file", str(broken))
    assert run.report["errors"] == [
        {"input": str(broken), "message": "--var-file: line 1, column 1: invalid HCL: unexpected input"}
    ]
    assert {t["id"].split("#")[0] for t in run.report["targets"]} == {
        str(tmp_path / "images" / "main.tf"),
        str(tmp_path / "network" / "main.tf"),
    }


# -- .tf.json -------------------------------------------------------------------------------------------------
def test_tf_json_is_read_with_lines_variables_and_dynamic_blocks(scan, tmp_path, owner_policy):
    document = {
        "variable": {"groups": {"default": ["all"]}, "regions": {"default": ["eu-west-1"]}},
        "locals": {"key": "alias/aws/ebs"},
        "resource": {
            TYPE: {
                "golden": {
                    "//": "the golden image",
                    "name": "golden",
                    "distribution": [
                        {
                            "region": "us-east-1",
                            "ami_distribution_configuration": {
                                "name": "golden-{{ imagebuilder:buildDate }}",
                                "kms_key_id": "${local.key}",
                                "launch_permission": {"user_groups": "${var.groups}"},
                            },
                        }
                    ],
                    "dynamic": {
                        "distribution": {
                            "for_each": "${var.regions}",
                            "content": {
                                "region": "${distribution.value}",
                                "ami_distribution_configuration": [{"name": "copy-{{ imagebuilder:buildDate }}"}],
                            },
                        }
                    },
                }
            }
        },
    }
    path = tmp_path / "images.tf.json"
    path.write_text(json.dumps(document, indent=2))
    text = path.read_text()
    run = scan(str(tmp_path), "--select", "IBD001,IBD002", "--config", owner_policy)
    assert run.whole() == [
        (
            "IBD001",
            f"{AMI}/kmsKeyId",
            str(path),
            line_of(text, '"kms_key_id"'),
            "AMI copy to us-east-1: the AWS-managed key 'alias/aws/ebs'; use a customer-managed KMS key",
        ),
        (
            "IBD002",
            GROUP0,
            str(path),
            line_of(text, '"user_groups"'),
            "AMI distributed to us-east-1 is public (userGroups contains 'all'); remove it"
            f"{ENCRYPTED}"
            '(variable groups = ["all"] (its default))',
        ),
        (
            "IBD001",
            "/distributions/1/amiDistributionConfiguration",
            str(path),
            line_of(text, '"ami_distribution_configuration": [') + 1,
            "AMI copy to eu-west-1: no kmsKeyId; set a customer-managed KMS key "
            '(variable regions = ["eu-west-1"] (its default))',
        ),
    ]
    assert run.report["targets"][0]["origin"] == {
        "kind": "terraform",
        "file": str(path),
        "resource": f"{TYPE}.golden",
    }


# -- plans ------------------------------------------------------------------------------------------------------
def _plan(after: dict, unknown: dict, planned: bool = True, extra_changes=()) -> dict:
    address = f"{TYPE}.golden"
    change = {
        "address": address,
        "mode": "managed",
        "type": TYPE,
        "name": "golden",
        "change": {"actions": ["create"], "after": after, "after_unknown": unknown},
    }
    plan = {"format_version": "1.2", "resource_changes": [change, *extra_changes]}
    if planned:
        values = {k: v for k, v in after.items()}
        plan["planned_values"] = {
            "root_module": {
                "resources": [{"address": address, "mode": "managed", "type": TYPE, "name": "golden", "values": values}]
            }
        }
    return plan


AFTER = {
    "name": "golden",
    "tags": {"team": "images"},
    "tags_all": {"team": "images", "owner": "platform"},
    "distribution": [
        {
            "region": "us-east-1",
            "ami_distribution_configuration": [
                {
                    "name": "golden-{{ imagebuilder:buildDate }}",
                    "description": "",
                    "target_account_ids": ["444455556666"],
                    "launch_permission": [],
                }
            ],
            "fast_launch_configuration": [],
            "launch_template_configuration": [],
        }
    ],
}
UNKNOWN = {"arn": True, "distribution": [{"ami_distribution_configuration": [{"kms_key_id": True}]}]}


def test_plan_unknowns_are_unverified_not_absent_and_tags_come_from_tags_all(scan, tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(_plan(AFTER, UNKNOWN), indent=2))
    policy = tmp_path / "policy.toml"
    policy.write_text('[rules.IBD010]\nrequired-tags = ["owner"]\n')
    run = scan(str(path), "--select", "IBD001,IBD008,IBD010", "--config", str(policy))
    text = path.read_text()
    # owner comes from the provider's default_tags (tags_all); the AMI tags lack it.
    assert [f[:4] for f in run.whole()] == [
        ("IBD010", AMI, str(path), line_of(text, '"ami_distribution_configuration": [', 3) + 1),
    ]
    # The AMI is shared, and its key unknown until apply: it may be alias/aws/ebs (IBD008).
    assert [(u["rule_id"], u["path"], u["reason"]) for u in run.report["unverified"]] == [
        ("IBD001", f"{AMI}/kmsKeyId", "KMS key is not a literal"),
        ("IBD008", f"{AMI}/kmsKeyId", "KMS key is not a literal"),
    ]
    assert run.report["targets"][0]["origin"]["kind"] == "terraform-plan"


def test_plans_with_only_resource_changes_are_read(scan, tmp_path):
    deleted = {
        "address": f"{TYPE}.old",
        "mode": "managed",
        "type": TYPE,
        "name": "old",
        "change": {"actions": ["delete"], "after": None, "after_unknown": {}},
    }
    read = {"address": f"data.{TYPE}.shared", "mode": "data", "type": TYPE, "name": "shared", "change": {}}
    after = json.loads(json.dumps(AFTER))
    after["distribution"][0]["ami_distribution_configuration"][0]["launch_permission"] = [{"user_groups": ["all"]}]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(_plan(after, UNKNOWN, planned=False, extra_changes=[deleted, read]), indent=2))
    run = scan(str(path), "--select", "IBD002")
    assert [f[:4] for f in run.whole()] == [("IBD002", GROUP0, str(path), line_of(path.read_text(), '"all"'))]
    assert [t["id"] for t in run.report["targets"]] == [f"{path}#{TYPE}.golden"]


# -- state -------------------------------------------------------------------------------------------------------
STATE_VALUES = {
    "arn": "arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/golden",
    "name": "golden",
    "tags_all": {},
    "distribution": [
        {
            "region": "us-east-1",
            "ami_distribution_configuration": [
                {"name": "golden", "kms_key_id": "", "launch_permission": [{"user_groups": ["all"], "user_ids": []}]}
            ],
            "fast_launch_configuration": [
                {
                    "account_id": "111122223333",
                    "enabled": True,
                    "max_parallel_launches": 0,
                    "launch_template": [{"launch_template_id": "lt-0123456789abcdef0", "launch_template_name": ""}],
                    "snapshot_configuration": [],
                }
            ],
        }
    ],
}


def test_state_from_terraform_show_is_located_by_address(scan, tmp_path, owner_policy):
    state = {
        "format_version": "1.0",
        "terraform_version": "1.9.0",
        "values": {
            "root_module": {
                "child_modules": [
                    {
                        "address": "module.images",
                        "resources": [
                            {
                                "address": f"module.images.{TYPE}.this",
                                "mode": "managed",
                                "type": TYPE,
                                "name": "this",
                                "values": STATE_VALUES,
                            }
                        ],
                    }
                ]
            }
        },
    }
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state, indent=2))
    text = path.read_text()
    run = scan(str(path), "--select", "IBD001,IBD002,IBD003", "--config", owner_policy)
    # The state's ARN says us-east-1 is the configuration's own region: its kms_key_id of ""
    # (never sent) leaves the original AMI as the recipe made it, which IBD001 does not judge;
    # the 0 parallel launches are not sent either.
    assert [f[:4] for f in run.whole()] == [("IBD002", GROUP0, str(path), line_of(text, '"all"'))]
    (target,) = run.report["targets"]
    assert target["id"] == f"{path}#module.images.{TYPE}.this"
    assert target["origin"] == {
        "kind": "terraform-state",
        "file": str(path),
        "arn": STATE_VALUES["arn"],
        "region": "us-east-1",
        "account": "111122223333",
        "resource": f"module.images.{TYPE}.this",
    }


def test_a_terraform_tfstate_file_is_read_too(scan, tmp_path):
    state = {
        "version": 4,
        "terraform_version": "1.9.0",
        "resources": [
            {
                "module": "module.images",
                "mode": "managed",
                "type": TYPE,
                "name": "this",
                "instances": [{"index_key": "prod", "attributes": STATE_VALUES}],
            }
        ],
    }
    path = tmp_path / "terraform.tfstate.json"
    path.write_text(json.dumps(state, indent=2))
    run = scan(str(path), "--select", "IBD002")
    assert [f[:4] for f in run.whole()] == [("IBD002", GROUP0, str(path), line_of(path.read_text(), '"all"'))]
    assert run.report["targets"][0]["origin"]["resource"] == f'module.images.{TYPE}.this["prod"]'


def test_json_kinds_are_recognised_by_structure_not_words(scan, tmp_path):
    """A template that merely mentions plan keys is still a template, and vice versa."""
    template = {
        "Description": 'mentions "planned_values" and "resource_changes"',
        "Resources": {
            "Golden": {
                "Type": "AWS::ImageBuilder::DistributionConfiguration",
                "Properties": {"Name": "golden", "Distributions": [{"Region": "us-east-1"}]},
            }
        },
    }
    (tmp_path / "template.json").write_text(json.dumps(template))
    plan = _plan(AFTER, UNKNOWN)
    plan["description"] = "AWS::ImageBuilder::DistributionConfiguration Resources"
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    run = scan(str(tmp_path), "--fail-on", "never")
    kinds = sorted((t["origin"]["file"].rsplit("/", 1)[-1], t["origin"]["kind"]) for t in run.report["targets"])
    assert kinds == [("plan.json", "terraform-plan"), ("template.json", "cloudformation")]
    assert run.report["errors"] == []


def test_a_var_file_that_is_not_a_regular_file_is_an_error(scan, tmp_path):
    main, _ = write(tmp_path, "main.tf", MODULE)
    run = scan(str(main), "--select", "IBD009", "--var-file", str(tmp_path))
    assert run.report["errors"][0] == {"input": str(tmp_path), "message": "--var-file: not a regular file"}
    assert run.code == 2


# -- the provider's default_tags ---------------------------------------------------------------------
PROVIDERS = """\
provider "aws" {
  region = "us-east-1"
  default_tags {
    tags = {
      owner = "platform"
      cost-center = "cc-1"
    }
  }
}

provider "aws" {
  alias  = "west"
  region = "eu-west-1"
  default_tags {
    tags = var.west_tags
  }
}

variable "west_tags" {}
"""


def _resource(name: str, extra: str = "") -> str:
    return f"""
resource "aws_imagebuilder_distribution_configuration" "{name}" {{
  name = "{name}"{extra}
  distribution {{
    region = "us-east-1"
    ami_distribution_configuration {{
      name     = "golden-{{{{ imagebuilder:buildDate }}}}"
      ami_tags = {{ owner = "platform", cost-center = "cc-1", team = "images" }}
    }}
  }}
}}
"""


def test_provider_default_tags_are_the_configurations_tags(scan, tmp_path):
    """The provider sends tags_all, its default_tags merged under the resource's own tags:
    a required tag set in default_tags is there (IBD010 said it was missing on every
    resource of a repository that tags through the provider), an own tag wins, an alias
    provider's unresolved defaults leave the tags unverified, and a module that declares
    no provider (a child module, whose caller's provider is not read) keeps its own."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[rules.IBD010]\nrequired-tags = ["owner", "cost-center", "team"]\n')
    root, text = write(
        tmp_path / "root",
        "main.tf",
        PROVIDERS
        + _resource("tagged", '\n  tags = { team = "images", owner = "images" }')
        + _resource("untagged")
        + _resource("west", "\n  provider = aws.west"),
    )
    child, child_text = write(tmp_path / "child", "main.tf", _resource("child", '\n  tags = { team = "images" }'))
    run = scan(str(root), str(child), "--select", "IBD010", "--config", str(policy))
    assert run.whole() == [
        (
            "IBD010",
            "/tags",
            str(child),
            line_of(child_text, "tags = {"),
            "configuration tags lack required key(s): owner, cost-center",
        ),
        (
            "IBD010",
            "/tags",
            str(root),
            line_of(text, '"untagged" {'),
            "configuration tags lack required key(s): team (default_tags of provider aws (main.tf))",
        ),
    ]
    assert [(u["target"], u["rule_id"], u["path"], u["reason"]) for u in run.report["unverified"]] == [
        (f"{root}#{TYPE}.west", "IBD010", "/tags", "configuration tags are not literal")
    ]


def test_tf_json_provider_default_tags_are_the_configurations_tags(scan, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text('[rules.IBD010]\nrequired-tags = ["owner", "team"]\n')
    providers = {"provider": {"aws": [{"region": "us-east-1", "default_tags": [{"tags": {"owner": "platform"}}]}]}}
    write(tmp_path, "providers.tf.json", json.dumps(providers, indent=2))
    ami = {"name": "golden-{{ imagebuilder:buildDate }}", "ami_tags": {"owner": "platform", "team": "images"}}
    resources = {
        "resource": {
            TYPE: {
                "tagged": {
                    "name": "tagged",
                    "tags": {"team": "images"},
                    "distribution": [{"region": "us-east-1", "ami_distribution_configuration": [ami]}],
                },
                "untagged": {
                    "name": "untagged",
                    "distribution": [{"region": "us-east-1", "ami_distribution_configuration": [ami]}],
                },
            }
        }
    }
    path, text = write(tmp_path, "main.tf.json", json.dumps(resources, indent=2))
    run = scan(str(path), "--select", "IBD010", "--config", str(policy))
    assert run.whole() == [
        (
            "IBD010",
            "/tags",
            str(path),
            line_of(text, '"untagged": {'),
            "configuration tags lack required key(s): team (default_tags of provider aws (providers.tf.json))",
        )
    ]


# -- count and for_each: one target per instance -----------------------------------------------------
def _instance(name: str, meta: str, groups: str) -> str:
    return f"""
resource "aws_imagebuilder_distribution_configuration" "{name}" {{
  {meta}
  name = "{name}"
  distribution {{
    region = "us-east-1"
    ami_distribution_configuration {{
      name       = "golden-{{{{ imagebuilder:buildDate }}}}"
      kms_key_id = "alias/golden"
      launch_permission {{ user_groups = {groups} }}
    }}
  }}
}}
"""


def test_count_and_for_each_make_one_target_per_instance(scan, tmp_path):
    """An environment map under for_each was audited once with each.value unresolved, so
    prod's public AMI was only "could not verify": each instance is now its own target
    (for_each over a map or toset([...]), count = N with count.index); count = 0 and an
    empty set create nothing; a count that does not resolve is audited once, as before."""
    envs = 'variable "envs" {\n  default = {\n    prod = { groups = ["all"] }\n    dev  = { groups = [] }\n  }\n}\n'
    path, text = write(
        tmp_path,
        "main.tf",
        envs
        + _instance("envs", "for_each = var.envs", "each.value.groups")
        + _instance("named", 'for_each = toset(["none", "all", "none"])', "[each.value]")
        + _instance("counted", "count = 2", '["all"]').replace('name = "counted"', 'name = "counted-${count.index}"')
        + _instance("off", "count = 0", '["all"]')
        + _instance("empty", "for_each = toset([])", '["all"]')
        + _instance("unknown", "count = var.on ? 1 : 0", '["all"]'),
    )
    run = scan(str(path), "--select", "IBD002")
    public = "AMI distributed to us-east-1 is public (userGroups contains 'all'); remove it"
    none = (
        "userGroups 'none' is not a launch permission group: the only one is 'all' (public), so EC2 rejects it "
        "and the distribution to us-east-1 fails; share with userIds, organizationArns or organizationalUnitArns "
        "instead"
    )
    counted = line_of(text, '"counted"') + 8  # its user_groups line, 8 below the resource header
    assert text.splitlines()[counted - 1].strip() == 'launch_permission { user_groups = ["all"] }'
    address = f"{path}#{TYPE}"
    assert [(f["target"], f["location"]["start_line"], f["message"]) for f in run.report["findings"]] == [
        (f'{address}.envs["prod"]', line_of(text, "each.value.groups"), public),
        (f'{address}.named["all"]', line_of(text, "[each.value]"), public),
        (f'{address}.named["none"]', line_of(text, "[each.value]"), none),
        (f"{address}.counted[0]", counted, public),
        (f"{address}.counted[1]", counted, public),
        (f"{address}.unknown", line_of(text, '"unknown"') + 8, public),
    ]
    assert [(t["id"], t["name"]) for t in run.report["targets"]] == [
        (f'{address}.envs["dev"]', "envs"),
        (f'{address}.envs["prod"]', "envs"),
        (f'{address}.named["all"]', "named"),
        (f'{address}.named["none"]', "named"),
        (f"{address}.counted[0]", "counted-0"),
        (f"{address}.counted[1]", "counted-1"),
        (f"{address}.unknown", "unknown"),
    ]
    assert run.report["unverified"] == [] and run.code == 1


def test_a_for_each_of_too_many_instances_is_audited_once_and_fails_the_run(scan, tmp_path):
    keys = ", ".join(f'k{i} = "all"' for i in range(1001))
    path, text = write(tmp_path, "main.tf", _instance("many", f"for_each = {{ {keys} }}", "[each.value]"))
    run = scan(str(path), "--select", "IBD002")
    assert [(e["input"], e["message"]) for e in run.report["errors"]] == [
        (
            str(path),
            f"line {line_of(text, 'resource ')}: {TYPE}.many: for_each makes more than 1,000 instances: "
            "audited once, unexpanded",
        )
    ]
    assert [t["id"] for t in run.report["targets"]] == [f"{path}#{TYPE}.many"]
    assert run.code == 2


def test_tf_json_for_each_makes_one_target_per_instance(scan, tmp_path):
    ami = {
        "name": "golden-{{ imagebuilder:buildDate }}",
        "kms_key_id": "alias/golden",
        "launch_permission": [{"user_groups": "${each.value}"}],
    }
    resource = {
        "for_each": {"prod": ["all"], "dev": []},
        "name": "envs",
        "distribution": [{"region": "us-east-1", "ami_distribution_configuration": [ami]}],
    }
    path, text = write(tmp_path, "main.tf.json", json.dumps({"resource": {TYPE: {"envs": resource}}}, indent=2))
    run = scan(str(path), "--select", "IBD002")
    assert [(f["target"], f["location"]["start_line"]) for f in run.report["findings"]] == [
        (f'{path}#{TYPE}.envs["prod"]', line_of(text, '"user_groups"'))
    ]
    assert [t["id"] for t in run.report["targets"]] == [f'{path}#{TYPE}.envs["dev"]', f'{path}#{TYPE}.envs["prod"]']


# -- child modules: their variables are what the scan's module calls pass -------------------------------
CHILD = """\
variable "groups" {
  type    = list(string)
  default = []
}

resource "aws_imagebuilder_distribution_configuration" "shared" {
  name = "shared"
  distribution {
    region = "us-east-1"
    ami_distribution_configuration {
      name       = "golden-{{ imagebuilder:buildDate }}"
      kms_key_id = "alias/golden"
      launch_permission { user_groups = var.groups }
    }
  }
}
"""


def test_a_child_modules_variables_are_what_its_callers_pass(scan, tmp_path, monkeypatch):
    """The root passes groups = var.share (["all"] in its terraform.tfvars) to a child
    whose default is []: read with its default, the public AMI passed silently. A
    child's own .tfvars does not count (Terraform reads none for it); scanned alone, with
    no caller in the scan, the directory is a root module and its .tfvars count."""
    _, child_text = write(tmp_path / "repo" / "modules" / "share", "main.tf", CHILD)
    write(tmp_path / "repo" / "modules" / "share", "terraform.tfvars", 'groups = ["ignored"]\n')
    write(
        tmp_path / "repo",
        "main.tf",
        'variable "share" {}\n\nmodule "golden" {\n  source = "./modules/share"\n  groups = var.share\n}\n',
    )
    write(tmp_path / "repo", "terraform.tfvars", 'share = ["all"]\n')
    monkeypatch.chdir(tmp_path)
    run = scan("repo", "--select", "IBD002", cwd=tmp_path)
    assert run.whole() == [
        (
            "IBD002",
            GROUP0,
            "repo/modules/share/main.tf",
            line_of(child_text, "var.groups"),
            "AMI distributed to us-east-1 is public (userGroups contains 'all'); remove it "
            '(variable groups = ["all"] (from module.golden in repo/main.tf))',
        )
    ]
    alone = scan("repo/modules/share", "--select", "IBD002", cwd=tmp_path)
    assert [
        (*f[:4], f[4].endswith('(variable groups = ["ignored"] (from terraform.tfvars))')) for f in alone.whole()
    ] == [
        (
            "IBD002",
            GROUP0,
            "repo/modules/share/main.tf",
            line_of(child_text, "var.groups"),
            True,
        )
    ]


def test_module_calls_that_disagree_leave_the_variable_unverified(scan, tmp_path):
    write(tmp_path / "modules" / "share", "main.tf", CHILD)
    calls = {"prod": '["all"]', "dev": "[]"}
    for env, groups in calls.items():
        source = '"../../modules/share"'
        write(tmp_path / "envs" / env, "main.tf", f'module "golden" {{\n  source = {source}\n  groups = {groups}\n}}\n')
    run = scan(str(tmp_path), "--select", "IBD002")
    assert run.whole() == []
    assert [(u["path"], u["reason"]) for u in run.report["unverified"]] == [
        (f"{AMI}/launchPermission/userGroups", "launch permission user group is not a literal")
    ]


def test_a_key_the_module_or_stack_creates_is_customer_managed(scan, tmp_path, owner_policy):
    """kms_key_id = aws_kms_key.x.arn (or an aws_kms_alias, which can only name a
    customer-managed key) and CloudFormation's !GetAtt Key.Arn / !Ref Alias need no
    verifying for IBD001 or IBD008; a key from elsewhere (a variable without a value, an
    import) is "could not verify" for both when the AMI is shared."""
    shared = 'target_account_ids = ["444455556666"]'
    tf, _ = write(
        tmp_path,
        "main.tf",
        f"""\
        variable "key" {{}}
        resource "aws_imagebuilder_distribution_configuration" "own" {{
          name = "own"
          distribution {{
            region = "eu-west-1"
            ami_distribution_configuration {{
              kms_key_id = aws_kms_key.images.arn
              {shared}
            }}
          }}
          distribution {{
            region = "eu-central-1"
            ami_distribution_configuration {{
              kms_key_id = "${{aws_kms_alias.images.arn}}"
              {shared}
            }}
          }}
        }}
        resource "aws_imagebuilder_distribution_configuration" "other" {{
          name = "other"
          distribution {{
            region = "eu-west-1"
            ami_distribution_configuration {{
              kms_key_id = var.key
              {shared}
            }}
          }}
        }}
        """,
    )
    cfn, _ = write(
        tmp_path,
        "stack.yaml",
        """\
        Resources:
          Key:
            Type: AWS::KMS::Key
          Alias:
            Type: AWS::KMS::Alias
            Properties: {AliasName: alias/images, TargetKeyId: !Ref Key}
          Golden:
            Type: AWS::ImageBuilder::DistributionConfiguration
            Properties:
              Name: golden
              Distributions:
                - Region: eu-west-1
                  AmiDistributionConfiguration: {KmsKeyId: !GetAtt Key.Arn, TargetAccountIds: ["444455556666"]}
                - Region: eu-central-1
                  AmiDistributionConfiguration: {KmsKeyId: !Ref Alias, TargetAccountIds: ["444455556666"]}
                - Region: eu-north-1
                  AmiDistributionConfiguration: {KmsKeyId: !ImportValue key, TargetAccountIds: ["444455556666"]}
        """,
    )
    run = scan(str(tf), str(cfn), "--select", "IBD001,IBD008", "--config", owner_policy)
    assert run.whole() == []
    assert [(u["target"], u["rule_id"], u["path"]) for u in run.report["unverified"]] == [
        (f"{tf}#{TYPE}.other", "IBD001", f"{AMI}/kmsKeyId"),
        (f"{tf}#{TYPE}.other", "IBD008", f"{AMI}/kmsKeyId"),
        (f"{cfn}#Golden", "IBD001", f"{AMI.replace('/0/', '/2/')}/kmsKeyId"),
        (f"{cfn}#Golden", "IBD008", f"{AMI.replace('/0/', '/2/')}/kmsKeyId"),
    ]


def test_a_child_module_inherits_its_callers_default_tags(scan, tmp_path):
    """A child module uses its caller's default aws provider unless the call maps one in
    providers: the root's default_tags tag its resources too (IBD010 said they lacked
    them). A call with a providers map is not followed, so its tags stay as written."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[rules.IBD010]\nrequired-tags = ["owner"]\n')
    write(
        tmp_path / "repo",
        "main.tf",
        """\
        provider "aws" {
          region = "us-east-1"
          default_tags {
            tags = { owner = "platform" }
          }
        }
        provider "aws" {
          alias  = "west"
          region = "eu-west-1"
        }
        module "inherits" {
          source = "./modules/inherits"
        }
        module "mapped" {
          source    = "./modules/mapped"
          providers = { aws = aws.west }
        }
        """,
    )
    resource = _resource("golden").replace(', team = "images"', "")
    write(tmp_path / "repo" / "modules" / "inherits", "main.tf", resource)
    mapped, mapped_text = write(tmp_path / "repo" / "modules" / "mapped", "main.tf", resource)
    run = scan(str(tmp_path / "repo"), "--select", "IBD010", "--config", str(policy))
    assert run.whole() == [
        (
            "IBD010",
            "",  # no tags at all: the resource itself
            str(mapped),
            line_of(mapped_text, '"golden" {'),
            "configuration tags lack required key(s): owner",
        )
    ]
