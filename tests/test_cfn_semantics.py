"""CloudFormation as CloudFormation deploys it: conditions both ways, AWS::NoValue,
parameters (defaults and --parameters files), mappings, intrinsics, the resource schema
(IBD016), CDK names, and never a silent pass on what stays unresolved.

Expected lines are read off the template text (``line_of``), never off the tool.
"""

from __future__ import annotations

import json
import textwrap

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.config import Settings
from auditor.engine import audit, configure_rules
from auditor.model import OWN_ACCOUNT, OWN_REGION, Unresolved
from auditor.plugins import PluginHost
from auditor.sources import load_paths

from conftest import line_of

AMI = "/distributions/0/amiDistributionConfiguration"
GROUP0 = f"{AMI}/launchPermission/userGroups/0"


def write(tmp_path, text: str, name: str = "stack.yaml"):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path, path.read_text()


PUBLIC = "AMI distributed to us-east-1 is public (userGroups contains 'all'); remove it"
# IBD002's note when the public AMI is an encrypted copy (the owner region is elsewhere).
ENCRYPTED = "; kmsKeyId encrypts this copy and EC2 cannot make an AMI with encrypted snapshots public, so it fails "
CONDITIONS = """\
Parameters:
  Visibility: {Type: String, Default: private, AllowedValues: [private, public]}
Conditions:
  Public: !Equals [!Ref Visibility, public]
"""


# -- Fn::If both ways --------------------------------------------------------------------------------
def test_public_ami_behind_if_on_the_user_groups_list(scan, tmp_path):
    path, text = write(
        tmp_path,
        CONDITIONS
        + """\
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            KmsKeyId: arn:aws:kms:us-east-1:111122223333:key/k
            LaunchPermissionConfiguration:
              UserGroups: !If [Public, [all], []]
""",
    )
    run = scan(str(path), "--select", "IBD002")
    assert run.whole() == [
        ("IBD002", GROUP0, str(path), line_of(text, "UserGroups"), f"{PUBLIC} (when condition Public is true)")
    ]
    assert run.code == 1


def test_public_ami_behind_if_on_one_user_group(scan, tmp_path):
    path, text = write(
        tmp_path,
        CONDITIONS
        + """\
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            LaunchPermissionConfiguration:
              UserGroups:
                - !If [Public, all, !Ref AWS::NoValue]
""",
    )
    run = scan(str(path), "--select", "IBD002")
    assert run.whole() == [
        ("IBD002", GROUP0, str(path), line_of(text, "- !If"), f"{PUBLIC} (when condition Public is true)")
    ]


def test_public_ami_behind_if_on_the_whole_distribution(scan, tmp_path, owner_policy):
    path, text = write(
        tmp_path,
        CONDITIONS
        + """\
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: eu-west-1
          AmiDistributionConfiguration:
            KmsKeyId: arn:aws:kms:eu-west-1:111122223333:key/k
        - Fn::If:
            - Public
            - Region: us-east-1
              AmiDistributionConfiguration:
                KmsKeyId: arn:aws:kms:us-east-1:111122223333:key/k
                LaunchPermissionConfiguration:
                  UserGroups: [all]
            - !Ref AWS::NoValue
""",
    )
    run = scan(str(path), "--select", "IBD001,IBD002", "--config", owner_policy)
    assert run.whole() == [
        (
            "IBD002",
            "/distributions/1/amiDistributionConfiguration/launchPermission/userGroups/0",
            str(path),
            line_of(text, "UserGroups: [all]"),
            f"{PUBLIC}{ENCRYPTED}(when condition Public is true)",
        )
    ]


def test_public_ami_behind_if_on_the_launch_permission_and_a_removed_key(scan, tmp_path, owner_policy):
    """The key is removed exactly when the AMI is public: both findings name the condition."""
    path, text = write(
        tmp_path,
        CONDITIONS
        + """\
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            KmsKeyId: !If [Public, !Ref AWS::NoValue, arn:aws:kms:us-east-1:111122223333:key/k]
            LaunchPermissionConfiguration: !If
              - Public
              - UserGroups: [all]
              - UserIds: ["444455556666"]
""",
    )
    run = scan(str(path), "--select", "IBD001,IBD002", "--config", owner_policy)
    assert run.whole() == [
        (
            "IBD001",
            AMI,
            str(path),
            line_of(text, "AmiDistributionConfiguration"),
            "AMI copy to us-east-1: no kmsKeyId; set a customer-managed KMS key (when condition Public is true)",
        ),
        ("IBD002", GROUP0, str(path), line_of(text, "UserGroups: [all]"), f"{PUBLIC} (when condition Public is true)"),
    ]


def test_impossible_combinations_are_skipped(scan, tmp_path):
    """Env cannot be prod and dev at once, so the public branch is never deployed."""
    path, _ = write(
        tmp_path,
        """\
Parameters:
  Env: {Type: String, Default: dev}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  IsDev: !Equals [dev, !Ref Env]
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            LaunchPermissionConfiguration:
              UserGroups: !If [IsProd, !If [IsDev, [all], []], []]
""",
    )
    run = scan(str(path), "--select", "IBD002")
    assert run.whole() == []
    assert run.report["errors"] == []


def test_two_conditions_are_named_together(scan, tmp_path):
    path, text = write(
        tmp_path,
        """\
Parameters:
  Env: {Type: String}
  Share: {Type: String}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  Sharing: !Equals [!Ref Share, "yes"]
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            LaunchPermissionConfiguration:
              UserGroups: !If [IsProd, [], !If [Sharing, [all], []]]
""",
    )
    run = scan(str(path), "--select", "IBD002")
    assert run.whole() == [
        (
            "IBD002",
            GROUP0,
            str(path),
            line_of(text, "UserGroups"),
            f"{PUBLIC} (when condition IsProd is false and condition Sharing is true)",
        )
    ]


def test_a_condition_fixed_by_a_parameters_file_is_not_explored_and_is_named(scan, tmp_path):
    path, text = write(
        tmp_path,
        CONDITIONS
        + """\
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            LaunchPermissionConfiguration:
              UserGroups: !If [Public, [all], []]
""",
    )
    private = tmp_path / "private.json"
    private.write_text(json.dumps([{"ParameterKey": "Visibility", "ParameterValue": "private"}]))
    assert scan(str(path), "--select", "IBD002", "--parameters", str(private)).whole() == []
    public = tmp_path / "public.json"
    public.write_text(json.dumps({"Parameters": {"Visibility": "public"}, "Tags": {"team": "images"}}))
    run = scan(str(path), "--select", "IBD002", "--parameters", str(public))
    assert run.whole() == [
        (
            "IBD002",
            GROUP0,
            str(path),
            line_of(text, "UserGroups"),
            f"{PUBLIC} (condition Public is true: parameter Visibility = 'public' (from {public}))",
        )
    ]


def test_an_undefined_condition_is_an_error_and_both_branches_are_audited(scan, tmp_path):
    path, text = write(
        tmp_path,
        """\
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            LaunchPermissionConfiguration:
              UserGroups: !If [Missing, [all], []]
""",
    )
    run = scan(str(path), "--select", "IBD002")
    assert run.whole() == [
        ("IBD002", GROUP0, str(path), line_of(text, "UserGroups"), f"{PUBLIC} (when condition Missing is true)")
    ]
    assert run.report["errors"] == [
        {"input": str(path), "message": "Fn::If names condition 'Missing', which Conditions does not define"}
    ]
    assert run.code == 2


def test_past_the_scenario_bound_every_branch_is_still_audited_and_the_rest_is_unverified(scan, tmp_path):
    names = [f"C{i}" for i in range(7)]  # 128 combinations, over the bound of 64
    params = "".join(f"  P{i}: {{Type: String}}\n" for i in range(7))
    conditions = "".join(f"  C{i}: !Equals [!Ref P{i}, on]\n" for i in range(7))
    tags = "".join(f"          t{i}: !If [C{i}, a, b]\n" for i in range(7))
    path, text = write(
        tmp_path,
        f"""\
Parameters:
{params}Conditions:
{conditions}Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Tags:
{tags}      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            LaunchPermissionConfiguration:
              UserGroups: !If [C6, [all], []]
""",
    )
    run = scan(str(path), "--select", "IBD002")
    assert [f[:4] for f in run.whole()] == [("IBD002", GROUP0, str(path), line_of(text, "UserGroups"))]
    assert "when condition C6 is true" in run.report["findings"][0]["message"]
    assert run.report["unverified"] == [
        {
            "target": f"{path}#Golden",
            "rule_id": "*",
            "path": "",
            "reason": f"128 combinations of conditions {', '.join(names)} exceed the bound of 64: audited a subset "
            "that takes every branch of every condition; other combinations were not checked",
        }
    ]


# -- parameters, mappings, intrinsics ---------------------------------------------------------------------
def test_parameter_defaults_resolve_and_findings_say_so(scan, tmp_path):
    path, text = write(
        tmp_path,
        """\
Parameters:
  Groups: {Type: CommaDelimitedList, Default: "all, 111122223333"}
  Region: {Type: String, Default: eu-west-1}
  Prefix: {Type: String, Default: golden}
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: !Ref Region
          AmiDistributionConfiguration:
            Name: !Sub "${Prefix}-base"
            KmsKeyId: !Join ["", ["arn:aws:kms:eu-west-1:111122223333:", "key/k"]]
            LaunchPermissionConfiguration:
              UserGroups: !Ref Groups
""",
    )
    run = scan(str(path), "--select", "IBD002,IBD005,IBD009")
    assert run.whole() == [
        (
            "IBD009",
            f"{AMI}/name",
            str(path),
            line_of(text, "Name: !Sub"),
            "AMI name 'golden-base' is the same for every build; add {{ imagebuilder:buildDate }} "
            "(parameter Prefix = 'golden' (its Default))",
        ),
        (
            "IBD002",
            GROUP0,
            str(path),
            line_of(text, "UserGroups"),
            "AMI distributed to eu-west-1 is public (userGroups contains 'all'); remove it "
            "(parameter Region = 'eu-west-1' (its Default); "
            'parameter Groups = ["all", "111122223333"] (its Default))',
        ),
        (
            # The list's entries are trimmed, as CloudFormation does: an account id is no group.
            "IBD002",
            f"{AMI}/launchPermission/userGroups/1",
            str(path),
            line_of(text, "UserGroups"),
            "userGroups '111122223333' is not a launch permission group: the only one is 'all' (public), so EC2 "
            "rejects it and the distribution to eu-west-1 fails; share with userIds, organizationArns or "
            "organizationalUnitArns instead (parameter Region = 'eu-west-1' (its Default); "
            'parameter Groups = ["all", "111122223333"] (its Default))',
        ),
    ]
    override = tmp_path / "params.json"
    override.write_text(json.dumps([{"ParameterKey": "Groups", "ParameterValue": "all"}]))
    assert [f[4] for f in scan(str(path), "--select", "IBD002", "--parameters", str(override)).whole()] == [
        "AMI distributed to eu-west-1 is public (userGroups contains 'all'); remove it "
        f"(parameter Region = 'eu-west-1' (its Default); parameter Groups = [\"all\"] (from {override}))"
    ]


def test_ssm_parameter_types_and_resources_never_resolve(scan, tmp_path):
    path, _ = write(
        tmp_path,
        """\
Parameters:
  Groups: {Type: "AWS::SSM::Parameter::Value<List<String>>", Default: /images/groups}
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            LaunchPermissionConfiguration:
              UserGroups: !Ref Groups
              UserIds: [!GetAtt Account.Id]
""",
    )
    run = scan(str(path), "--select", "IBD002")
    assert run.whole() == []
    assert [(u["rule_id"], u["path"], u["reason"]) for u in run.report["unverified"]] == [
        ("IBD002", f"{AMI}/launchPermission/userGroups", "launch permission user group is not a literal")
    ]


def test_find_in_map_resolves_literal_keys_and_lists_the_rest(scan, tmp_path, owner_policy):
    path, text = write(
        tmp_path,
        """\
Mappings:
  Sharing:
    prod: {Groups: [all], Key: alias/aws/ebs}
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            KmsKeyId: !FindInMap [Sharing, prod, Key]
            LaunchPermissionConfiguration:
              UserGroups: !FindInMap [Sharing, prod, Groups]
        - Region: us-west-2
          AmiDistributionConfiguration:
            KmsKeyId: !FindInMap [Sharing, !Ref AWS::Region, Key]
""",
    )
    run = scan(str(path), "--select", "IBD001,IBD002", "--config", owner_policy)
    assert [f[:4] for f in run.whole()] == [
        ("IBD001", f"{AMI}/kmsKeyId", str(path), line_of(text, "KmsKeyId: !FindInMap [Sharing, prod")),
        ("IBD002", GROUP0, str(path), line_of(text, "UserGroups: !FindInMap")),
    ]
    assert [(u["rule_id"], u["path"]) for u in run.report["unverified"]] == [
        ("IBD001", "/distributions/1/amiDistributionConfiguration/kmsKeyId")
    ]


def test_pseudo_parameters_stay_unresolved_but_known_to_mean_the_stack_s_own(tmp_path):
    path, _ = write(
        tmp_path,
        """\
Parameters:
  Name: {Type: String, Default: golden}
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: !Ref Name
      Distributions:
        - Region: !Sub "${AWS::Region}"
          AmiDistributionConfiguration:
            LaunchPermissionConfiguration:
              UserIds: [!Ref AWS::AccountId]
""",
    )
    loaded = load_paths([str(path)], PluginHost(load_entry_points=False).file_sources(), 10_000_000)
    (target,) = loaded.targets
    distribution = target.config["distributions"][0]
    assert target.config["name"] == "golden"
    assert distribution["region"] == Unresolved("!Sub ${AWS::Region}", OWN_REGION)
    user_ids = distribution["amiDistributionConfiguration"]["launchPermission"]["userIds"]
    assert user_ids == [Unresolved("!Ref AWS::AccountId", OWN_ACCOUNT)]


def test_whole_lists_and_objects_behind_intrinsics_are_listed_not_passed(scan, tmp_path):
    path, _ = write(
        tmp_path,
        """\
Parameters:
  Groups: {Type: CommaDelimitedList}
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            TargetAccountIds: !Split [",", !ImportValue SharedAccounts]
            LaunchPermissionConfiguration:
              UserGroups: !Ref Groups
        - Region: us-west-2
          AmiDistributionConfiguration: !ImportValue SharedAmiSettings
""",
    )
    policy = tmp_path / "policy.toml"
    policy.write_text('[rules.IBD006]\nallowed-accounts = ["111122223333"]\n')
    run = scan(str(path), "--select", "IBD002,IBD006", "--config", str(policy))
    assert run.whole() == []
    assert [(u["rule_id"], u["path"], u["reason"]) for u in run.report["unverified"]] == [
        (
            "*",
            "/distributions/1/amiDistributionConfiguration",
            "AmiDistributionConfiguration is !ImportValue SharedAmiSettings: no check inside it could run",
        ),
        ("IBD002", f"{AMI}/launchPermission/userGroups", "launch permission user group is not a literal"),
        ("IBD006", f"{AMI}/targetAccountIds", "target account is not a literal"),
    ]


# -- the resource schema (IBD016) ---------------------------------------------------------------------------
def test_properties_the_schema_does_not_define_are_reported_never_mapped(scan, tmp_path):
    path, text = write(
        tmp_path,
        """\
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Tags:
      team: images
    Properties:
      Name: golden
      Arn: arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            Name: "golden-{{ imagebuilder:buildDate }}"
            KmsKeyId: arn:aws:kms:us-east-1:111122223333:key/k
            LaunchPermission:
              UserGroups: [all]
          S3ExportConfiguration:
            RoleName: vmimport
            DiskImageFormat: QCOW2
            S3Bucket: Not_A_Bucket
""",
    )
    run = scan(str(path))
    assert run.whole() == [
        (
            "IBD016",
            "/Tags",
            str(path),
            line_of(text, "Tags:"),
            "'Tags' is not a resource attribute: CloudFormation rejects the template "
            "(\"Invalid template resource property 'Tags'\"); move it into Properties",
        ),
        (
            "IBD016",
            "/Arn",
            str(path),
            line_of(text, "Arn:"),
            "'Arn' is read-only: CloudFormation reports it, a template cannot set it; remove it",
        ),
        (
            "IBD016",
            f"{AMI}/LaunchPermission",
            str(path),
            line_of(text, "LaunchPermission:"),
            "'LaunchPermission' is not a member of AmiDistributionConfiguration; "
            "did you mean 'LaunchPermissionConfiguration'?",
        ),
        (
            "IBD016",
            "/distributions/0/S3ExportConfiguration",
            str(path),
            line_of(text, "S3ExportConfiguration:"),
            "'S3ExportConfiguration' is not a member of Distribution in CloudFormation: the Image Builder API has "
            "s3ExportConfiguration, but AWS::ImageBuilder::DistributionConfiguration cannot set it",
        ),
    ]


def test_properties_that_are_not_an_object_are_an_error_and_other_resources_are_audited(scan, tmp_path):
    path, text = write(
        tmp_path,
        """\
Resources:
  Broken:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties: [Name, golden]
  Fine:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: fine
      Distributions:
        - Region: us-east-1
""",
    )
    run = scan(str(path))
    line = line_of(text, "Properties: [")
    assert run.report["errors"] == [
        {
            "input": f"{path}#Broken",
            "message": f"line {line}, column 5: Broken: Properties must be an object, got a list",
        }
    ]
    assert [(t["id"], t["status"]) for t in run.report["targets"]] == [
        (f"{path}#Broken", "error"),
        (f"{path}#Fine", "audited"),
    ]
    assert run.code == 2


def test_cdk_construct_path_is_the_name_in_reports(scan, tmp_path):
    template = {
        "Resources": {
            "GoldenDistribution8F3A": {
                "Type": "AWS::ImageBuilder::DistributionConfiguration",
                "Properties": {
                    "Name": "golden",
                    "Distributions": [
                        {"Region": "us-east-1", "AmiDistributionConfiguration": {"Name": "golden"}},
                    ],
                },
                "Metadata": {"aws:cdk:path": "ImagesStack/GoldenDistribution/Resource"},
            }
        }
    }
    path = tmp_path / "cdk.out" / "ImagesStack.template.json"
    path.parent.mkdir()
    path.write_text(json.dumps(template, indent=1))
    (tmp_path / "cdk.out" / "manifest.json").write_text('{"version": "36.0.0", "artifacts": {}}')
    run = scan(str(tmp_path / "cdk.out"), "--select", "IBD009")
    assert [(t["name"], t["origin"]["resource"]) for t in run.report["targets"]] == [
        ("ImagesStack/GoldenDistribution", "GoldenDistribution8F3A")
    ]
    assert [f[:4] for f in run.whole()] == [
        ("IBD009", f"{AMI}/name", str(path), line_of(path.read_text(), '"Name": "golden"', 2))
    ]
    assert "(ImagesStack/GoldenDistribution)" in run.out
    assert run.report["errors"] == []


def test_bad_parameters_files_are_errors_and_the_scan_goes_on(scan, tmp_path):
    path, _ = write(
        tmp_path,
        """\
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            LaunchPermissionConfiguration:
              UserGroups: [all]
""",
    )
    broken = tmp_path / "broken.json"
    broken.write_text('[{"ParameterKey": "A",')
    shaped = tmp_path / "shaped.json"
    shaped.write_text('{"A": "b"}')
    run = scan(
        str(path),
        "--select",
        "IBD002",
        "--parameters",
        str(broken),
        "--parameters",
        str(shaped),
        "--parameters",
        str(tmp_path / "absent.json"),
    )
    assert run.report["errors"] == [
        {
            "input": str(broken),
            "message": "--parameters: line 1, column 23: invalid JSON: Expecting property name enclosed in double quotes",
        },
        {
            "input": str(shaped),
            "message": '--parameters: expected the create-stack list [{"ParameterKey": ..., "ParameterValue": ...}] '
            'or a template configuration {"Parameters": {...}}',
        },
        {"input": str(tmp_path / "absent.json"), "message": "--parameters: no such file"},
    ]
    assert [f[0] for f in run.whole()] == ["IBD002"]
    assert run.code == 2


def test_a_finding_under_a_condition_has_its_own_fingerprint(scan, tmp_path):
    """A baseline entry for the unconditional finding must not hide the conditional one."""
    body = """\
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            LaunchPermissionConfiguration:
              UserGroups: {groups}
"""
    path, _ = write(tmp_path, body.format(groups="[all]"))
    always = scan(str(path), "--select", "IBD002").report["findings"]
    path.write_text(CONDITIONS + body.format(groups="!If [Public, [all], []]"))
    sometimes = scan(str(path), "--select", "IBD002").report["findings"]
    assert [f["path"] for f in always] == [f["path"] for f in sometimes] == [GROUP0]
    assert always[0]["fingerprint"] != sometimes[0]["fingerprint"]


# -- property: random Fn::If trees ---------------------------------------------------------------------------
HOST = PluginHost(load_entry_points=False)
SETTINGS = Settings(select=("IBD002",))
SPECS = configure_rules(HOST, SETTINGS)
SOURCES = HOST.file_sources()
CONDITION_NAMES = ["C0", "C1", "C2", "C3"]

leaves = st.sampled_from(["violating", "compliant", "empty", "novalue"])
trees = st.recursive(
    leaves,
    lambda inner: st.tuples(st.sampled_from(CONDITION_NAMES), inner, inner),
    max_leaves=8,
)
places = st.sampled_from(["list", "entry", "permission", "distribution"])


def _leaf(place: str, leaf: str):
    """A leaf of the tree at one of four places a public AMI can hide."""
    if leaf == "novalue":
        return {"Ref": "AWS::NoValue"}
    groups = {"violating": ["all"], "compliant": ["111122223333"], "empty": []}[leaf]
    if place == "list":
        return groups if leaf != "compliant" else []
    if place == "entry":
        return "all" if leaf == "violating" else {"Ref": "AWS::NoValue"}
    if place == "permission":
        return {"UserGroups": groups} if leaf != "compliant" else {"UserIds": groups}
    permission = {"UserGroups": groups} if leaf != "compliant" else {"UserIds": groups}
    return {"Region": "us-east-1", "AmiDistributionConfiguration": {"LaunchPermissionConfiguration": permission}}


def _tree(place: str, tree):
    if isinstance(tree, str):
        return _leaf(place, tree)
    condition, yes, no = tree
    return {"Fn::If": [condition, _tree(place, yes), _tree(place, no)]}


def _violating_reachable(tree, assumed=None) -> bool:
    """Some assignment of the (independent) conditions reaches a violating leaf."""
    assumed = assumed or {}
    if isinstance(tree, str):
        return tree == "violating"
    condition, yes, no = tree
    if condition in assumed:  # the same condition again: only its assumed branch is reachable
        return _violating_reachable(yes if assumed[condition] else no, assumed)
    return _violating_reachable(yes, {**assumed, condition: True}) or _violating_reachable(
        no, {**assumed, condition: False}
    )


def _template(place: str, tree) -> dict:
    value = _tree(place, tree)
    if place == "list":
        distribution = {
            "Region": "us-east-1",
            "AmiDistributionConfiguration": {"LaunchPermissionConfiguration": {"UserGroups": value}},
        }
    elif place == "entry":
        distribution = {
            "Region": "us-east-1",
            "AmiDistributionConfiguration": {"LaunchPermissionConfiguration": {"UserGroups": [value]}},
        }
    elif place == "permission":
        distribution = {"Region": "us-east-1", "AmiDistributionConfiguration": {"LaunchPermissionConfiguration": value}}
    else:
        distribution = value
    return {
        "Parameters": {f"P{i}": {"Type": "String"} for i in range(len(CONDITION_NAMES))},
        "Conditions": {name: {"Fn::Equals": [{"Ref": f"P{i}"}, "on"]} for i, name in enumerate(CONDITION_NAMES)},
        "Resources": {
            "Golden": {
                "Type": "AWS::ImageBuilder::DistributionConfiguration",
                "Properties": {"Name": "golden", "Distributions": [distribution]},
            }
        },
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(place=places, tree=trees)
def test_random_if_trees_report_the_violating_branch_every_time(tmp_path, place, tree):
    path = tmp_path / "tree.json"
    path.write_text(json.dumps(_template(place, tree)))
    loaded = load_paths([str(path)], SOURCES, 10_000_000)
    result = audit(HOST, SPECS, loaded.targets, loaded.errors, SETTINGS)
    assert result.errors == ()
    fired = [f for f in result.findings if f.rule_id == "IBD002"]
    assert bool(fired) == _violating_reachable(tree)
    for finding in fired:
        # A leaf that is not the whole tree sits under at least one condition.
        if not _all_violating(tree):
            assert "when condition" in finding.message, finding.message


def _all_violating(tree, assumed=None) -> bool:
    """Every assignment of the conditions reaches a violating leaf."""
    assumed = assumed or {}
    if isinstance(tree, str):
        return tree == "violating"
    condition, yes, no = tree
    if condition in assumed:
        return _all_violating(yes if assumed[condition] else no, assumed)
    return _all_violating(yes, {**assumed, condition: True}) and _all_violating(no, {**assumed, condition: False})


def test_the_resource_condition_holds_in_every_scenario(scan, tmp_path):
    """A resource that only exists when Public is true is public whenever it exists, and
    its findings say when the stack creates it (with the default, private, it does not)."""
    path, text = write(
        tmp_path,
        CONDITIONS
        + """\
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Condition: Public
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration:
            LaunchPermissionConfiguration:
              UserGroups: !If [Public, [all], []]
""",
    )
    run = scan(str(path), "--select", "IBD002")
    assert run.whole() == [
        (
            "IBD002",
            GROUP0,
            str(path),
            line_of(text, "UserGroups"),
            f"{PUBLIC} (the resource is created only when condition Public is true)",
        )
    ]


def test_properties_behind_an_unresolved_intrinsic_are_listed_for_every_rule(scan, tmp_path):
    path, _ = write(
        tmp_path,
        """\
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties: !GetAtt Settings.Value
""",
    )
    run = scan(str(path))
    assert run.whole() == []
    assert run.report["unverified"] == [
        {
            "target": f"{path}#Golden",
            "rule_id": "*",
            "path": "",
            "reason": "Properties is !GetAtt Settings.Value: nothing in it could be verified",
        }
    ]


# -- property: any mix of intrinsics is audited or reported, never a traceback ------------------------------------
FUNCTIONS = [
    "Ref",
    "Fn::If",
    "Fn::Sub",
    "Fn::Join",
    "Fn::Select",
    "Fn::Split",
    "Fn::FindInMap",
    "Fn::GetAtt",
    "Condition",
]
atoms = st.sampled_from(["all", "C0", "P0", "M", "AWS::NoValue", "AWS::Region", "${P0}-x", "", 3, True, None])
soup = st.recursive(
    atoms,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["UserGroups", "Region", "KmsKeyId", "x"]), inner, max_size=3)
        | st.builds(lambda fn, arg: {fn: arg}, st.sampled_from(FUNCTIONS), inner)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(condition=soup, default=soup, mapping=soup, distribution=soup, permission=soup)
def test_any_mix_of_intrinsics_is_audited_or_reported(tmp_path, condition, default, mapping, distribution, permission):
    template = {
        "Parameters": {"P0": {"Type": "String", "Default": default}},
        "Mappings": {"M": mapping},
        "Conditions": {"C0": condition},
        "Resources": {
            "Golden": {
                "Type": "AWS::ImageBuilder::DistributionConfiguration",
                "Properties": {
                    "Name": "golden",
                    "Distributions": [
                        distribution,
                        {
                            "Region": "us-east-1",
                            "AmiDistributionConfiguration": {"LaunchPermissionConfiguration": permission},
                        },
                    ],
                },
            }
        },
    }
    path = tmp_path / "soup.json"
    path.write_text(json.dumps(template))
    loaded = load_paths([str(path)], SOURCES, 10_000_000)
    result = audit(HOST, SPECS, loaded.targets, loaded.errors, SETTINGS)
    assert [t.status for t in result.targets] == ["audited"]
    assert not [e for e in result.errors if "raised" in e.message or "failed:" in e.message]


def test_resources_made_in_a_foreach_loop_are_an_error_not_a_silent_pass(scan, tmp_path):
    path, text = write(
        tmp_path,
        """\
Transform: AWS::LanguageExtensions
Resources:
  Fn::ForEach::Images:
    - Env
    - [dev, prod]
    - Golden${Env}:
        Type: AWS::ImageBuilder::DistributionConfiguration
        Properties:
          Name: !Sub "golden-${Env}"
          Distributions:
            - Region: us-east-1
""",
    )
    run = scan(str(path))
    line = line_of(text, "Fn::ForEach::Images")
    assert run.report["errors"] == [
        {
            "input": str(path),
            "message": f"line {line}, column 3: Fn::ForEach::Images makes AWS::ImageBuilder::DistributionConfiguration "
            "resources in a loop, which ib-audit does not expand: they are not audited",
        }
    ]
    assert run.code == 2


def test_what_no_rule_could_check_is_a_warning_for_every_rule_in_ocsf(tmp_path):
    """A "could not verify" entry for all rules ("*") is no compliance pass in OCSF."""
    from auditor.reports import ocsf

    path, _ = write(
        tmp_path,
        """\
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration: !ImportValue SharedAmiSettings
""",
    )
    loaded = load_paths([str(path)], SOURCES, 10_000_000)
    specs = configure_rules(HOST, Settings(select=("IBD002",)))
    result = audit(HOST, specs, loaded.targets, loaded.errors, Settings(select=("IBD002",)))
    (event,) = ocsf.events(result)
    assert event.compliance.status_id == 2  # warning, not a pass
    assert event.message == (
        "IBD002 could not verify: /distributions/0/amiDistributionConfiguration: "
        "AmiDistributionConfiguration is !ImportValue SharedAmiSettings: no check inside it could run"
    )


# -- YAML merge keys and aliases, as `aws cloudformation package` and SAM expand them ----------------
MERGED = """\
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - Region: us-east-1
          AmiDistributionConfiguration: &base
            Name: "golden-{{ imagebuilder:buildDate }}"
            KmsKeyId: arn:aws:kms:us-east-1:111122223333:key/k
            LaunchPermissionConfiguration:
              UserGroups: [all]
        - Region: eu-west-1
          AmiDistributionConfiguration:
            <<: *base
            KmsKeyId: arn:aws:kms:eu-west-1:111122223333:key/k
        - Region: ap-south-1
          AmiDistributionConfiguration:
            <<: [{LaunchPermissionConfiguration: {UserIds: ["111122223333"]}}, *base]
            KmsKeyId: arn:aws:kms:ap-south-1:111122223333:key/k
"""


def test_yaml_merge_keys_expand_as_package_and_sam_expand_them(scan, tmp_path, owner_policy):
    """CloudFormation rejects YAML aliases; `aws cloudformation package` and SAM expand them,
    merge keys included, with PyYAML. eu-west-1 merges the public launch permission: read
    as a member named '<<', that public AMI passed unseen. ap-south-1's list merges its own
    launch permission first, which wins over the public one; its own KmsKeyId wins too."""
    path, text = write(tmp_path, MERGED)
    run = scan(str(path), "--config", owner_policy, "--select", "IBD002,IBD005,IBD016")
    line = line_of(text, "UserGroups")  # both findings: where the merged value is written
    public = PUBLIC + ENCRYPTED.rstrip()
    assert run.whole() == [
        ("IBD002", GROUP0, str(path), line, public),
        ("IBD002", GROUP0.replace("/0/", "/1/"), str(path), line, public.replace("us-east-1", "eu-west-1")),
    ]
    assert run.report["warnings"] == [
        {
            "kind": "yaml-alias",
            "message": "this template uses YAML aliases (*base): CloudFormation rejects them, and only "
            "`aws cloudformation package` or SAM expand them before deploying; ib-audit audits the "
            "template as expanded",
            "location": {
                "file": str(path),
                "start_line": line_of(text, "<<: *base"),
                "start_column": 17,
                "end_line": line_of(text, "<<: *base"),
                "end_column": 22,
            },
        }
    ]
    assert run.code == 1


def test_a_merge_key_of_a_scalar_is_an_error_naming_its_line(scan, tmp_path):
    path, text = write(tmp_path, MERGED.replace("<<: *base", "<<: golden", 1))
    run = scan(str(path))
    assert [(e["input"], e["message"]) for e in run.report["errors"]] == [
        (
            str(path),
            f"line {line_of(text, '<<: golden')}, column 17: a YAML merge key (<<) takes a mapping "
            "or a list of mappings",
        )
    ]
    assert run.code == 2
