"""Account-context checks (IBD020-IBD027) against real AWS wire protocols.

moto in server mode plays KMS, IAM, EC2, S3, ECR, Organizations and STS, behind
tests/aws_front.py, which answers what moto lacks (EC2 image block public access,
S3's ExpectedBucketOwner), answers AccessDenied where a test says so, and counts every
call. The Image Builder endpoint is tests/imagebuilder_server.py. An organization of
five member accounts is set up once so that every check has a pass, a fail and a
"could not verify" case; expected lines are read off the written files, not the tool.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from aws_front import AwsFront
from imagebuilder_server import ImageBuilderServer
from test_org import _account_of_access_key

from auditor.cli import main

M = "123456789012"  # moto's default account: the management account, where pipelines run
X = "999988887777"  # an account outside the organization
OTHER_ORG = "arn:aws:organizations::111111111111:organization/o-exampleorg1"
E1, W1, AP, AN = "us-east-1", "eu-west-1", "ap-southeast-2", "ap-northeast-1"
ROLE = "EC2ImageBuilderDistributionCrossAccountRole"
POLICY_ARN = "arn:aws:iam::aws:policy/Ec2ImageBuilderCrossAccountDistributionAccess"
USE = ["kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"]
MISSING_LT, DENIED_LT = "lt-0123456789abcdef0", "lt-0deadbeefdeadbeef0"


@dataclass
class World:
    front: AwsFront
    imagebuilder: ImageBuilderServer
    org_id: str
    org_arn: str
    members: dict[str, str]  # role in the story -> account id
    keys: dict[str, str] = field(default_factory=dict)  # name -> key ARN
    template_id: str = ""
    replica_arn: str = ""


def _post(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(url, method="POST")).read()


def _policy(*statements: dict) -> str:
    root = {"Sid": "EnableIAM", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{M}:root"}}
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{**root, "Action": "kms:*", "Resource": "*"}, *statements]}
    )


def _trust(account: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _session(account: str) -> boto3.session.Session:
    sts = boto3.client("sts", region_name=E1)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/setup", RoleSessionName="setup")["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=E1,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from moto.server import ThreadedMotoServer
    from moto.sts.exceptions import STSClientError
    from moto.sts.models import STSBackend

    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("aws-home")
        for key, value in {
            "AWS_ACCESS_KEY_ID": "AKIDMANAGEMENT",
            "AWS_SECRET_ACCESS_KEY": "management-secret",
            "AWS_REGION": E1,
            "AWS_CONFIG_FILE": str(home / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",  # Ec2ImageBuilderCrossAccountDistributionAccess must exist
        }.items():
            mp.setenv(key, value)
        for key in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
            mp.delenv(key, raising=False)
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        host, port = moto.get_host_and_port()
        _post(f"http://{host}:{port}/moto-api/reset")
        front = AwsFront(f"http://{host}:{port}", _account_of_access_key, default_account=M)
        mp.setenv("AWS_ENDPOINT_URL", front.start())
        imagebuilder = ImageBuilderServer(default_account=M)
        imagebuilder.resolve_account = _account_of_access_key
        mp.setenv("AWS_ENDPOINT_URL_IMAGEBUILDER", imagebuilder.start())
        try:
            w = _build(front, imagebuilder)
            denied = {w.members["denied"], X}
            original = STSBackend.assume_role

            def assume_role(self, **kwargs):
                # moto lets any role be assumed; AWS refuses where no role trusts the caller.
                if any(f":{a}:role/ib-audit" in kwargs["role_arn"] for a in denied):
                    raise STSClientError(
                        "AccessDenied", f"Not authorized to perform sts:AssumeRole on {kwargs['role_arn']}"
                    )
                return original(self, **kwargs)

            mp.setattr(STSBackend, "assume_role", assume_role)
            yield w
        finally:
            front.stop()
            imagebuilder.stop()
            moto.stop()


def _build(front: AwsFront, imagebuilder: ImageBuilderServer) -> World:
    org = boto3.client("organizations", region_name=E1)
    org.create_organization(FeatureSet="ALL")
    described = org.describe_organization()["Organization"]
    members = {
        name: org.create_account(Email=f"{name}@example.invalid", AccountName=name)["CreateAccountStatus"]["AccountId"]
        for name in ("ready", "no-policy", "wrong-trust", "denied", "no-role")
    }
    w = World(front, imagebuilder, described["Id"], described["Arn"], members)
    a = members["ready"]

    # Target accounts: the distribution role as the guide says, and three ways to get it wrong.
    for name, trusted, attach in (("ready", M, True), ("no-policy", M, False), ("wrong-trust", "111111111111", True)):
        iam = _session(members[name]).client("iam")
        iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=_trust(trusted))
        if attach:
            iam.attach_role_policy(RoleName=ROLE, PolicyArn=POLICY_ARN)

    # KMS keys in the management account.
    kms = boto3.client("kms", region_name=E1)

    def key(name: str, client=kms, **kwargs) -> str:
        arn = client.create_key(Description=name, **kwargs)["KeyMetadata"]["Arn"]
        w.keys[name] = arn
        return arn

    allow_a = {"Sid": "AccountA", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a}:root"}, "Action": USE}
    kms.create_alias(AliasName="alias/shared", TargetKeyId=key("shared", Policy=_policy({**allow_a, "Resource": "*"})))
    key("private", Policy=_policy())
    vpc_only = {**allow_a, "Resource": "*", "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-0123456789abcdef0"}}}
    key("vpc", Policy=_policy(vpc_only))
    org_wide = {"Sid": "Organization", "Effect": "Allow", "Principal": "*", "Action": USE, "Resource": "*"}
    key("org", Policy=_policy({**org_wide, "Condition": {"StringEquals": {"aws:PrincipalOrgID": w.org_id}}}))
    kms.create_grant(  # moto wants key ids, not ARNs, here
        KeyId=key("granted", Policy=_policy()).rsplit("/", 1)[1],
        GranteePrincipal=f"arn:aws:iam::{a}:root",
        Operations=[
            "Decrypt",
            "ReEncryptFrom",
            "ReEncryptTo",
            "GenerateDataKeyWithoutPlaintext",
            "CreateGrant",
            "DescribeKey",
        ],
    )
    kms.disable_key(KeyId=key("disabled").rsplit("/", 1)[1])
    key("rsa", KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    no_describe = {
        "Sid": "NoDescribe",
        "Effect": "Deny",
        "Principal": "*",
        "Action": ["kms:DescribeKey"],
        "Resource": "*",
    }
    key("no-describe", Policy=_policy(no_describe))
    mrk = key("mrk", MultiRegion=True)
    w.replica_arn = kms.replicate_key(KeyId=mrk.rsplit("/", 1)[1], ReplicaRegion=W1)["ReplicaKeyMetadata"]["Arn"]
    key("west", client=boto3.client("kms", region_name=W1), Policy=_policy({**allow_a, "Resource": "*"}))
    front.deny.add((M, "*", "kms:GetKeyPolicy", w.keys["west"].rsplit("/", 1)[1]))

    # Roles, buckets, repositories, launch templates, default VPCs, block public access.
    boto3.client("iam", region_name=E1).create_role(RoleName="vmimport", AssumeRolePolicyDocument=_trust(M))
    boto3.client("s3", region_name=E1).create_bucket(Bucket="ib-export-ours")
    _session(a).client("s3").create_bucket(Bucket="ib-export-theirs")
    front.bucket_owner = lambda bucket: {"ib-export-ours": M, "ib-export-theirs": a}.get(bucket)
    front.deny.add((M, "*", "s3:HeadBucket", "ib-export-secret"))
    boto3.client("ecr", region_name=E1).create_repository(repositoryName="golden/app")
    front.deny.add((M, "*", "ecr:DescribeRepositories", "denied"))
    ec2 = boto3.client("ec2", region_name=E1)
    w.template_id = ec2.create_launch_template(
        LaunchTemplateName="golden-lt", LaunchTemplateData={"InstanceType": "t3.micro"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    front.deny.add((M, "*", "ec2:DescribeLaunchTemplates", DENIED_LT))
    west = boto3.client("ec2", region_name=W1)
    (vpc,) = west.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    for subnet in west.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]:
        west.delete_subnet(SubnetId=subnet["SubnetId"])
    west.delete_vpc(VpcId=vpc["VpcId"])
    front.deny.add((M, AN, "ec2:DescribeVpcs", ""))
    front.bpa[(M, W1)] = "block-new-sharing"
    front.deny.add((M, AP, "ec2:GetImageBlockPublicAccessState", ""))
    front.deny.add((members["ready"], "*", "organizations:ListAccounts", ""))  # members may not list, as in AWS
    return w


# -- the configurations: one story per check, each with its pass, fail and could-not-verify -------
def _ami(region: str, **ami) -> dict:
    return {"region": region, "amiDistributionConfiguration": {"name": "golden-{{ imagebuilder:buildDate }}", **ami}}


def _configs(w: World) -> dict[str, list[dict]]:
    """name -> distributions."""
    m = w.members
    keys = w.keys
    fast = {"enabled": True, "maxParallelLaunches": 6}
    export = {"diskImageFormat": "VMDK"}
    return {
        # IBD020
        "kms-ok": [_ami(E1, kmsKeyId="alias/shared")],
        "kms-disabled": [_ami(E1, kmsKeyId=keys["disabled"].rsplit("/", 1)[1])],
        "kms-asymmetric": [_ami(E1, kmsKeyId=keys["rsa"])],
        "kms-missing": [_ami(E1, kmsKeyId="alias/no-such-key")],
        "kms-regions": [_ami(E1, kmsKeyId=keys["mrk"]), _ami(W1, kmsKeyId=keys["mrk"])],
        "kms-replica": [_ami(W1, kmsKeyId=w.replica_arn)],
        "kms-denied": [_ami(E1, kmsKeyId=keys["no-describe"])],
        # IBD021
        "share-ok": [_ami(E1, kmsKeyId="alias/shared", targetAccountIds=[m["ready"]])],
        "share-private": [_ami(E1, kmsKeyId=keys["private"], targetAccountIds=[m["ready"]])],
        "share-grant": [_ami(E1, kmsKeyId=keys["granted"], targetAccountIds=[m["ready"]])],
        "share-org": [
            _ami(E1, kmsKeyId=keys["org"], launchPermission={"userIds": [m["ready"]], "organizationArns": [w.org_arn]})
        ],
        "share-vpc": [_ami(E1, kmsKeyId=keys["vpc"], launchPermission={"userIds": [m["ready"]]})],
        "share-denied": [_ami(W1, kmsKeyId=keys["west"], targetAccountIds=[m["ready"]])],
        # IBD022 and IBD027
        "targets": [
            _ami(E1, targetAccountIds=[m["ready"], m["no-policy"], m["wrong-trust"], m["denied"], m["no-role"]])
        ],
        "outside": [_ami(E1, targetAccountIds=[X], launchPermission={"organizationArns": [OTHER_ORG]})],
        # IBD023
        "public-ok": [_ami(E1, launchPermission={"userGroups": ["all"]})],
        "public-blocked": [_ami(W1, launchPermission={"userGroups": ["all"]})],
        "public-denied": [_ami(AP, launchPermission={"userGroups": ["all"]})],
        # IBD024
        "templates": [
            {
                "region": E1,
                "launchTemplateConfigurations": [
                    {"launchTemplateId": w.template_id},
                    {"launchTemplateId": MISSING_LT},
                    {"launchTemplateId": DENIED_LT},
                ],
                "fastLaunchConfigurations": [{**fast, "launchTemplate": {"launchTemplateName": "golden-lt"}}],
            },
            {"region": W1, "fastLaunchConfigurations": [fast]},
            {"region": AN, "fastLaunchConfigurations": [fast]},
        ],
        # IBD025
        "export-ok": [
            {"region": E1, "s3ExportConfiguration": {**export, "roleName": "vmimport", "s3Bucket": "ib-export-ours"}}
        ],
        "export-bad": [
            {
                "region": E1,
                "s3ExportConfiguration": {**export, "roleName": "no-such-role", "s3Bucket": "ib-export-theirs"},
            },
            {
                "region": W1,
                "s3ExportConfiguration": {**export, "roleName": "vmimport", "s3Bucket": "ib-export-missing"},
            },
        ],
        "export-denied": [
            {"region": E1, "s3ExportConfiguration": {**export, "roleName": "vmimport", "s3Bucket": "ib-export-secret"}}
        ],
        # IBD026
        "containers": [
            {
                "region": region,
                "containerDistributionConfiguration": {
                    "containerTags": ["latest"],
                    "targetRepository": {"service": "ECR", "repositoryName": name},
                },
            }
            for region, name in ((E1, "golden/app"), (W1, "golden/app"), (AP, "denied/app"))
        ],
    }


def _write(folder: Path, configs: dict[str, list[dict]]) -> None:
    folder.mkdir(exist_ok=True)
    for name, distributions in configs.items():
        doc = {"distributionConfiguration": {"name": name, "distributions": distributions}}
        (folder / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")


def _line(file: Path, needle: str, occurrence: int = 0) -> int:
    """The 1-based line of the ``occurrence``-th line containing ``needle`` (read off the file)."""
    hits = [n for n, text in enumerate(file.read_text().splitlines(), 1) if needle in text]
    return hits[occurrence]


def _scan(tmp_path, capsys, *args) -> tuple[int, dict, str]:
    out = tmp_path / f"report-{len(list(tmp_path.glob('report-*')))}.json"
    code = main(["scan", *args, "--select", "IBD02", "-f", f"json={out}", "-f", "text"])
    captured = capsys.readouterr()
    return code, json.loads(out.read_text()), captured.out


# -- file scans with --aws-context -----------------------------------------------------------
@pytest.fixture(scope="module")
def file_scan(world, tmp_path_factory):
    """One --aws-context scan of every story, as the management account."""
    folder = tmp_path_factory.mktemp("configs")
    _write(folder, _configs(world))
    world.front.calls.clear()
    world.front.requests.clear()
    report = folder / "report.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        code = main(
            ["scan", ".", "--aws-context", "--role-name", "ib-audit", "--select", "IBD02", "-f", f"json={report}"]
        )
    return folder, code, json.loads(report.read_text()), (dict(world.front.calls), dict(world.front.requests))


def _expected(folder: Path, rows) -> list[tuple]:
    """(rule, path, file, needle[, occurrence[, lines below it]]) -> (rule, path, file, line)."""
    out = []
    for rule, path, name, needle, *where in rows:
        occurrence, below = (*where, 0, 0)[:2]
        out.append((rule, path, f"{name}.json", _line(folder / f"{name}.json", needle, occurrence) + below))
    return sorted(out)


AMI = "/distributions/0/amiDistributionConfiguration"


def test_each_check_passes_fails_and_cannot_verify(world, file_scan):
    folder, code, report, _calls = file_scan
    m = world.members
    found = sorted(
        (f["rule_id"], f["path"], f["location"]["file"], f["location"]["start_line"]) for f in report["findings"]
    )
    assert found == _expected(
        folder,
        [
            ("IBD020", f"{AMI}/kmsKeyId", "kms-disabled", '"kmsKeyId"'),
            ("IBD020", f"{AMI}/kmsKeyId", "kms-asymmetric", '"kmsKeyId"'),
            ("IBD020", f"{AMI}/kmsKeyId", "kms-missing", '"kmsKeyId"'),
            ("IBD020", "/distributions/1/amiDistributionConfiguration/kmsKeyId", "kms-regions", '"kmsKeyId"', 1),
            ("IBD021", f"{AMI}/targetAccountIds/0", "share-private", m["ready"]),
            ("IBD022", f"{AMI}/targetAccountIds/1", "targets", m["no-policy"]),
            ("IBD022", f"{AMI}/targetAccountIds/2", "targets", m["wrong-trust"]),
            ("IBD022", f"{AMI}/targetAccountIds/4", "targets", m["no-role"]),
            ("IBD023", f"{AMI}/launchPermission/userGroups/0", "public-blocked", '"all"'),
            ("IBD024", "/distributions/0/launchTemplateConfigurations/1/launchTemplateId", "templates", MISSING_LT),
            # The entry's own object, which starts on the line after the list opens.
            ("IBD024", "/distributions/1/fastLaunchConfigurations/0", "templates", '"fastLaunchConfigurations"', 1, 1),
            ("IBD025", "/distributions/0/s3ExportConfiguration/roleName", "export-bad", "no-such-role"),
            ("IBD025", "/distributions/0/s3ExportConfiguration/s3Bucket", "export-bad", "ib-export-theirs"),
            ("IBD025", "/distributions/1/s3ExportConfiguration/s3Bucket", "export-bad", "ib-export-missing"),
            (
                "IBD026",
                "/distributions/1/containerDistributionConfiguration/targetRepository/repositoryName",
                "containers",
                '"golden/app"',
                1,
            ),
            ("IBD027", f"{AMI}/targetAccountIds/0", "outside", X),
            ("IBD027", f"{AMI}/launchPermission/organizationArns/0", "outside", OTHER_ORG),
        ],
    )
    unverified = sorted((u["rule_id"], u["target"], u["path"], u["reason"]) for u in report["unverified"])
    assert unverified == sorted(
        [
            ("IBD020", "kms-denied.json", f"{AMI}/kmsKeyId", "AccessDenied on kms:DescribeKey"),
            ("IBD021", "share-denied.json", f"{AMI}/targetAccountIds/0", "AccessDenied on kms:GetKeyPolicy"),
            (
                "IBD021",
                "share-vpc.json",
                f"{AMI}/launchPermission/userIds/0",
                "statement 'AccountA' has a condition StringEquals on aws:SourceVpc that cannot be evaluated",
            ),
            (
                "IBD022",
                "targets.json",
                f"{AMI}/targetAccountIds/3",
                f"AccessDenied on sts:AssumeRole (ib-audit in {m['denied']})",
            ),
            (
                "IBD022",
                "outside.json",
                f"{AMI}/targetAccountIds/0",
                f"AccessDenied on sts:AssumeRole (ib-audit in {X})",
            ),
            (
                "IBD023",
                "public-denied.json",
                f"{AMI}/launchPermission/userGroups/0",
                "UnauthorizedOperation on ec2:GetImageBlockPublicAccessState",
            ),
            (
                "IBD024",
                "templates.json",
                "/distributions/0/launchTemplateConfigurations/2/launchTemplateId",
                "UnauthorizedOperation on ec2:DescribeLaunchTemplates",
            ),
            (
                "IBD024",
                "templates.json",
                "/distributions/2/fastLaunchConfigurations/0",
                "UnauthorizedOperation on ec2:DescribeVpcs",
            ),
            (
                "IBD025",
                "export-denied.json",
                "/distributions/0/s3ExportConfiguration/s3Bucket",
                "AccessDenied on s3:HeadBucket",
            ),
            (
                "IBD026",
                "containers.json",
                "/distributions/2/containerDistributionConfiguration/targetRepository/repositoryName",
                "AccessDenied on ecr:DescribeRepositories",
            ),
        ]
    )
    assert report["errors"] == []
    assert code == 1


def test_messages_say_what_aws_will_refuse(world, file_scan):
    _folder, _code, report, _calls = file_scan
    messages = {(f["target"], f["rule_id"], f["path"]): f["message"] for f in report["findings"]}
    keys, m = world.keys, world.members
    disabled_id = keys["disabled"].rsplit("/", 1)[1]
    assert messages[("kms-disabled.json", "IBD020", f"{AMI}/kmsKeyId")] == (
        f"KMS key {disabled_id} cannot encrypt the AMI copy in us-east-1: it is disabled"
    )
    assert messages[("kms-asymmetric.json", "IBD020", f"{AMI}/kmsKeyId")] == (
        f"KMS key {keys['rsa']} cannot encrypt the AMI copy in us-east-1: it is a RSA_2048 key for ENCRYPT_DECRYPT; "
        "EBS needs a symmetric encryption key (SYMMETRIC_DEFAULT)"
    )
    assert messages[("kms-missing.json", "IBD020", f"{AMI}/kmsKeyId")] == (
        f"KMS key alias/no-such-key does not exist in account {M}, us-east-1"
    )
    assert messages[("kms-regions.json", "IBD020", "/distributions/1/amiDistributionConfiguration/kmsKeyId")] == (
        f"KMS key {keys['mrk']} cannot encrypt the AMI copy in eu-west-1: it is in us-east-1; "
        f"use its multi-Region replica in eu-west-1: {world.replica_arn}"
    )
    assert messages[("share-private.json", "IBD021", f"{AMI}/targetAccountIds/0")] == (
        f"KMS key {keys['private']} does not let account {m['ready']}'s {ROLE} use it: kms:Decrypt, "
        "kms:ReEncryptFrom, kms:ReEncryptTo, kms:GenerateDataKeyWithoutPlaintext, kms:CreateGrant, kms:DescribeKey "
        "(nothing allows kms:Decrypt)"
    )
    assert messages[("targets.json", "IBD022", f"{AMI}/targetAccountIds/4")] == (
        f"account {m['no-role']} has no role {ROLE}: the AMI copy into it fails"
    )
    assert messages[("targets.json", "IBD022", f"{AMI}/targetAccountIds/2")] == (
        f"the trust policy of {ROLE} in account {m['wrong-trust']} does not let account {M} assume it "
        "(nothing allows sts:AssumeRole)"
    )
    assert messages[("export-bad.json", "IBD025", "/distributions/0/s3ExportConfiguration/s3Bucket")] == (
        f"S3 bucket ib-export-theirs belongs to another account, not {M}: the exported image would leave the account"
    )
    assert messages[("outside.json", "IBD027", f"{AMI}/targetAccountIds/0")] == (
        f"account {X} is not a member of organization {world.org_id}: shared outside the organization"
    )
    severities = {f["rule_id"]: f["severity"] for f in report["findings"]}
    assert severities["IBD027"] == "critical"


def test_each_distinct_fact_is_fetched_once(world, file_scan):
    folder, _code, _report, (calls, requests) = file_scan
    written = [
        json.loads(p.read_text())["distributionConfiguration"] for p in folder.glob("*.json") if p.name != "report.json"
    ]
    key_spellings = {
        (d["region"] if "arn:" not in k else k.split(":")[3], k)
        for c in written
        for d in c["distributions"]
        for k in [d.get("amiDistributionConfiguration", {}).get("kmsKeyId")]
        if k
    }
    assert sum(n for (_acct, op), n in calls.items() if op == "kms:DescribeKey") == len(key_spellings)
    regions = {d["region"] for c in written for d in c["distributions"] if "amiDistributionConfiguration" in d}
    assert calls[(M, "ec2:GetImageBlockPublicAccessState")] == len(regions)
    assert calls[(M, "organizations:DescribeOrganization")] == 1
    assert calls[(M, "organizations:ListAccounts")] == 1
    assert calls[(world.members["ready"], "iam:GetRole")] == 1  # asked for by five configurations
    # Nothing was asked twice: every (account, region, operation, request) is distinct.
    assert [k for k, n in requests.items() if n > 1] == []


def test_one_key_shared_by_many_configurations_is_described_once(world, tmp_path, capsys, monkeypatch):
    configs = {
        f"cfg-{i:02}": [_ami(E1, kmsKeyId=k, targetAccountIds=[world.members["ready"]])]
        for i, k in enumerate(["alias/shared", world.keys["private"], world.keys["org"]] * 10)
    }
    _write(tmp_path / "many", configs)
    world.front.calls.clear()
    monkeypatch.chdir(tmp_path)
    code, report, _ = _scan(tmp_path, capsys, "many", "--aws-context")
    assert world.front.count("kms:DescribeKey") == 3
    assert world.front.count("kms:GetKeyPolicy") == 3
    assert world.front.count("kms:ListGrants") == 1  # only where the key policy alone falls short
    assert world.front.count("organizations:ListAccounts") == 1
    assert sorted({f["target"] for f in report["findings"] if f["rule_id"] == "IBD021"}) == [
        f"many/cfg-{i:02}.json" for i in range(1, 30, 3)
    ]
    assert code == 1


# -- live and organization scans ----------------------------------------------------------------
def _publish(w: World, configs: dict[str, list[dict]], account: str = M, region: str = E1) -> dict[str, str]:
    return {
        name: w.imagebuilder.add(region, {"name": name, "distributions": d}, account=account)
        for name, d in configs.items()
    }


def test_organization_scan_reports_an_ami_shared_outside_the_organization(world, tmp_path, capsys):
    world.imagebuilder.configs.clear()
    configs = _configs(world)
    arns = _publish(world, {k: configs[k] for k in ("outside", "targets", "share-org", "public-blocked")})
    inside = _publish(world, {"member-share": [_ami(E1, targetAccountIds=[X, M])]}, account=world.members["no-role"])
    world.front.calls.clear()
    code, report, out = _scan(tmp_path, capsys, "--organization", "--role-name", "ib-audit", "--region", E1)
    # The organization is listed once: the accounts to scan and the members IBD027 checks against.
    assert world.front.calls[(M, "organizations:ListAccounts")] == 1
    outside = [(f["target"], f["path"], f["severity"]) for f in report["findings"] if f["rule_id"] == "IBD027"]
    assert sorted(outside) == sorted(
        [
            (arns["outside"], f"{AMI}/targetAccountIds/0", "critical"),
            (arns["outside"], f"{AMI}/launchPermission/organizationArns/0", "critical"),
            (inside["member-share"], f"{AMI}/targetAccountIds/0", "critical"),
        ]
    )
    assert f"IBD027 [critical] account {X} is not a member of organization {world.org_id}" in out
    # The organization scan reads every target account through its role: the same answers as the file scan.
    ready = [(f["path"], f["rule_id"]) for f in report["findings"] if f["target"] == arns["targets"]]
    assert sorted(ready) == [
        (f"{AMI}/targetAccountIds/1", "IBD022"),
        (f"{AMI}/targetAccountIds/2", "IBD022"),
        (f"{AMI}/targetAccountIds/4", "IBD022"),
    ]
    assert [f["path"] for f in report["findings"] if f["target"] == arns["share-org"]] == []
    assert code == 2  # the account whose role cannot be assumed is an error of the scan itself


def test_an_organization_listing_that_fails_is_not_asked_again(world, tmp_path, capsys):
    """--organization lists the members once; when that is refused, IBD027 says so rather than asking again."""
    world.imagebuilder.configs.clear()
    arns = _publish(world, {"outside": _configs(world)["outside"]})
    world.front.calls.clear()
    denied = (M, "*", "organizations:ListAccounts", "")
    world.front.deny.add(denied)
    try:
        code, report, _ = _scan(
            tmp_path, capsys, "--organization", "--accounts", M, "--role-name", "ib-audit", "--region", E1
        )
    finally:
        world.front.deny.discard(denied)
    assert world.front.calls[(M, "organizations:ListAccounts")] == 1
    assert [e["input"] for e in report["errors"]] == ["organization"]
    assert report["errors"][0]["message"].startswith("cannot list accounts: ")
    path = f"{AMI}/targetAccountIds/0"
    assert [(u["rule_id"], u["target"], u["path"], u["reason"]) for u in report["unverified"]] == [
        ("IBD022", arns["outside"], path, f"AccessDenied on sts:AssumeRole (ib-audit in {X})"),
        ("IBD027", arns["outside"], path, "AccessDenied on organizations:ListAccounts"),
    ]
    assert code == 2


def test_single_account_scan_cannot_verify_other_accounts_or_membership(world, tmp_path, capsys, monkeypatch):
    """A member account's own scan: no role into other accounts, and members may not list the organization."""
    world.imagebuilder.configs.clear()
    a = world.members["ready"]
    arns = _publish(world, {"from-member": [_ami(E1, targetAccountIds=[world.members["no-role"]])]}, account=a)
    creds = _session(a).get_credentials()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds.secret_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", creds.token)
    code, report, _ = _scan(tmp_path, capsys, "--aws", "--region", E1)
    path = f"{AMI}/targetAccountIds/0"
    assert [(u["rule_id"], u["target"], u["path"], u["reason"]) for u in report["unverified"]] == [
        (
            "IBD022",
            arns["from-member"],
            path,
            f"no credentials for account {world.members['no-role']} (scan with --role-name to read other accounts "
            "through a role)",
        ),
        ("IBD027", arns["from-member"], path, "AccessDenied on organizations:ListAccounts"),
    ]
    assert report["findings"] == []
    assert code == 0


def test_could_not_verify_is_one_entry_per_configuration_and_one_group_per_cause(world, tmp_path, capsys, monkeypatch):
    """A member account's scan of many configurations copying into accounts it cannot read:
    the JSON report has one entry per configuration, rule and reason (at the pointer that holds
    every reference it stands for), and the text and HTML reports one group per rule and reason."""
    from auditor.merge import merge_reports
    from auditor.plugins import PluginHost
    from auditor.reports.html import prepare

    world.imagebuilder.configs.clear()
    a, b, c = world.members["ready"], world.members["no-role"], world.members["no-policy"]
    many = {f"cfg-{i:02}": [_ami(E1, targetAccountIds=[b])] for i in range(10)}
    arns = _publish(
        world, {**many, "two-regions": [_ami(E1, targetAccountIds=[b]), _ami(W1, targetAccountIds=[b, c])]}, account=a
    )
    creds = _session(a).get_credentials()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds.secret_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", creds.token)
    code, report, out = _scan(tmp_path, capsys, "--aws", "--region", E1)
    no_b, no_c = (
        f"no credentials for account {account} (scan with --role-name to read other accounts through a role)"
        for account in (b, c)
    )
    listing = "AccessDenied on organizations:ListAccounts"
    first = f"{AMI}/targetAccountIds/0"
    both = arns["two-regions"]
    expected = [
        *[
            (rule, arns[name], first, reason)
            for name in many
            for rule, reason in (("IBD022", no_b), ("IBD027", listing))
        ],
        ("IBD022", both, "/distributions", no_b),  # two distributions copy to b: one entry for both
        ("IBD022", both, "/distributions/1/amiDistributionConfiguration/targetAccountIds/1", no_c),
        ("IBD027", both, "/distributions", listing),
    ]
    got = [(u["rule_id"], u["target"], u["path"], u["reason"]) for u in report["unverified"]]
    assert sorted(got) == sorted(expected)
    assert report["findings"] == [] and code == 0

    ordered = [arns[name] for name in many] + [both]

    def group(rule, reason, entries):
        shown = [f"    {arn} {path}" for arn, path in entries[:5]]
        more = [f"    and {len(entries) - 5} more (the JSON report lists each)"] if len(entries) > 5 else []
        return [f"  {rule} in {len(entries)} configuration(s): {reason}", *shown, *more]

    section = out[out.index("Could not verify") :].split("\n\n")[0].splitlines()
    assert section == [
        f"Could not verify {len(expected)} check(s) in {len(ordered)} configuration(s) (unresolved values, unknown facts):",
        *group("IBD022", no_b, [(arn, first) for arn in ordered[:-1]] + [(both, "/distributions")]),
        f"  {both}: IBD022 /distributions/1/amiDistributionConfiguration/targetAccountIds/1: {no_c}",
        *group("IBD027", listing, [(arn, first) for arn in ordered[:-1]] + [(both, "/distributions")]),
    ]

    (tmp_path / "report.json").write_text(json.dumps(report))
    known = {rule.id: (plugin, rule) for plugin, rule in PluginHost().rules()}
    model = prepare(merge_reports([tmp_path / "report.json"], known))
    assert [
        (g["rule_id"], g["reason"], g["configurations"], len(g["entries"]), g["more"]) for g in model["unverified"]
    ] == [
        ("IBD022", no_b, 11, 11, 0),
        ("IBD022", no_c, 1, 1, 0),
        ("IBD027", listing, 11, 11, 0),
    ]


def test_a_denied_role_lookup_names_the_account_it_is_about(world, tmp_path, capsys, monkeypatch):
    """A reason such as "AccessDenied on iam:GetRole" alone would read the same for every account."""
    c = world.members["no-policy"]
    folder = tmp_path / "c"
    _write(folder, {"one": [_ami(E1, targetAccountIds=[c]), _ami(W1, targetAccountIds=[c])]})
    denied = (c, "*", "iam:GetRole", "")
    world.front.deny.add(denied)
    try:
        monkeypatch.chdir(tmp_path)
        _code, report, _ = _scan(tmp_path, capsys, "c", "--aws-context", "--role-name", "ib-audit")
    finally:
        world.front.deny.discard(denied)
    assert [(u["rule_id"], u["target"], u["path"], u["reason"]) for u in report["unverified"]] == [
        ("IBD022", "c/one.json", "/distributions", f"role {ROLE} in account {c}: AccessDenied on iam:GetRole")
    ]


def test_live_scan_without_context_and_offline_scans_do_not_run_context_rules(world, tmp_path, capsys):
    world.imagebuilder.configs.clear()
    _publish(world, {"outside": _configs(world)["outside"]})
    world.front.calls.clear()
    code, report, _ = _scan(tmp_path, capsys, "--aws", "--region", E1, "--no-aws-context")
    assert report["findings"] == [] and report["rules"] == [] and code == 0
    assert world.front.calls == {}
    folder = tmp_path / "offline"
    _write(folder, {"outside": _configs(world)["outside"]})
    code, report, _ = _scan(tmp_path, capsys, str(folder))
    assert report["rules"] == [] and report["unverified"] == [] and code == 0
    assert world.front.calls == {}


def test_aws_context_without_credentials_is_one_error(world, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    folder = tmp_path / "c"
    _write(folder, {"kms-ok": _configs(world)["kms-ok"]})
    out = tmp_path / "r.json"
    code = main(["scan", str(folder), "--aws-context", "-f", f"json={out}"])
    err = capsys.readouterr().err
    report = json.loads(out.read_text())
    assert code == 2
    assert [e["input"] for e in report["errors"]] == ["--aws-context"]
    assert report["errors"][0]["message"].startswith(
        "cannot identify the account of these credentials: AWS credentials not found"
    )
    assert "Traceback" not in err
    assert {f["rule_id"] for f in report["findings"]} <= {"IBD001", "IBD009"}  # the offline rules still ran


def test_html_by_resource_view_shows_the_facts(world, file_scan, tmp_path, monkeypatch, capsys):
    folder, *_ = file_scan
    monkeypatch.chdir(folder)
    html = tmp_path / "r.html"
    main(["scan", "share-org.json", "public-blocked.json", "kms-denied.json", "--aws-context", "-f", f"html={html}"])
    capsys.readouterr()
    page = html.read_text()
    assert f"{world.keys['org']}: Enabled, SYMMETRIC_DEFAULT" in page
    assert f"account {world.members['ready']}: yes; organization {world.org_id}: yes" in page
    assert "block-new-sharing (managed by account)" in page
    assert "could not verify (AccessDenied on kms:DescribeKey)" in page


def test_merged_reports_keep_the_facts_for_the_by_resource_view(world, file_scan, tmp_path, monkeypatch, capsys):
    from auditor.merge import merge_reports
    from auditor.plugins import PluginHost
    from auditor.reports.html import prepare

    folder, *_ = file_scan
    monkeypatch.chdir(folder)
    shards = {"a": ["share-org.json", "kms-denied.json"], "b": ["public-blocked.json"]}
    reports = {}
    for name, files in shards.items():
        out = tmp_path / f"{name}.json"
        main(["scan", *files, "--aws-context", "--select", "IBD02", "-f", f"json={out}"])
        reports[name] = json.loads(out.read_text())
    merged, html = tmp_path / "merged.json", tmp_path / "merged.html"
    code = main(
        ["merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-f", f"json={merged}", "-f", f"html={html}"]
    )
    capsys.readouterr()
    assert code == 1
    expected = {**reports["a"]["facts"], **reports["b"]["facts"]}
    assert expected["public-blocked.json"]["/distributions/0"]["Block public access for AMIs"] == (
        "block-new-sharing (managed by account)"
    )
    assert expected["kms-denied.json"]["/distributions/0"]["KMS key"] == (
        f"{world.keys['no-describe']}: could not verify (AccessDenied on kms:DescribeKey)"
    )
    assert json.loads(merged.read_text())["facts"] == expected
    # What the HTML reporter is given: each configuration's noted facts, by distribution.
    known = {rule.id: (plugin, rule) for plugin, rule in PluginHost().rules()}
    model = prepare(merge_reports([tmp_path / "a.json", tmp_path / "b.json"], known))
    assert model["has_context"] is True
    shown = {
        r["id"]: {s["kind"]: {f["label"]: f["text"] for f in s["facts"]} for s in r["sharing"]}
        for r in model["resources"]
    }
    assert shown == {
        target: {f"distribution {p.rsplit('/', 1)[1]}": labels for p, labels in notes.items()}
        for target, notes in expected.items()
    }
    page = html.read_text()
    assert "block-new-sharing (managed by account)" in page and "Account context" in page


def test_rules_command_marks_context_rules(capsys):
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    assert "IBD020  kms-key-unusable" in out
    assert "        needs AWS context: kms:DescribeKey\n" in out
    assert main(["rules", "--format", "json"]) == 0
    rules = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rules["IBD021"]["needs_aws_context"] is True
    assert rules["IBD021"]["aws_actions"] == [
        "kms:DescribeKey",
        "kms:GetKeyPolicy",
        "kms:ListGrants",
        "organizations:DescribeOrganization",
        "organizations:ListAccounts",
    ]
    assert rules["IBD002"]["needs_aws_context"] is False and rules["IBD002"]["aws_actions"] == []


def test_offline_import_never_loads_boto3():
    import subprocess
    import sys

    code = "import sys, auditor.cli, auditor.context, auditor.context.providers, auditor.context.policy; sys.exit('boto3' in sys.modules)"
    assert subprocess.run([sys.executable, "-P", "-c", code], env={**os.environ}).returncode == 0


@pytest.mark.parametrize("west_in_prod", [True, False], ids=["west-in-prod", "west-in-dev"])
def test_a_templates_facts_follow_each_distribution_across_its_branches(
    world, tmp_path, capsys, monkeypatch, west_in_prod
):
    """A template whose condition moves a distribution in the list: each fact stays with
    the distribution it was found for (by region, as findings merge), in the JSON facts
    and the HTML's rows, and a fact that differs between branches says when each holds.
    Before, the last scenario's fact at a list index overwrote the fact of whichever
    distribution another scenario had there (eu-west-1 showed us-east-1's disabled key).
    With eu-west-1 only in dev, the first scenario (prod) has us-east-1 at index 0."""
    from auditor.reports import html as html_report

    keys = world.keys
    west = f"""Region: {W1}
            AmiDistributionConfiguration:
              Name: "golden-{{{{ imagebuilder:buildDate }}}}"
              KmsKeyId: {world.replica_arn}"""
    branches = [f"- {west}", "- !Ref AWS::NoValue"]
    template = tmp_path / "golden.yaml"
    template.write_text(
        f"""AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Env:
    Type: String
    AllowedValues: [prod, dev]
Conditions:
  IsProd: !Equals [!Ref Env, prod]
Resources:
  Golden:
    Type: AWS::ImageBuilder::DistributionConfiguration
    Properties:
      Name: golden
      Distributions:
        - !If
          - IsProd
          {branches[0] if west_in_prod else branches[1]}
          {branches[1] if west_in_prod else branches[0]}
        - Region: {E1}
          AmiDistributionConfiguration:
            Name: "golden-{{{{ imagebuilder:buildDate }}}}"
            KmsKeyId: !If [IsProd, {keys["org"]}, {keys["disabled"]}]
"""
    )
    models = []
    real_prepare = html_report.prepare
    monkeypatch.setattr(html_report, "prepare", lambda *a, **k: models.append(real_prepare(*a, **k)) or models[-1])
    monkeypatch.chdir(tmp_path)
    out, html = tmp_path / "r.json", tmp_path / "r.html"
    main(["scan", "golden.yaml", "--aws-context", "--select", "IBD020", "-f", f"json={out}", "-f", f"html={html}"])
    capsys.readouterr()
    when_west = f"when condition IsProd is {'true' if west_in_prod else 'false'}"
    west_fact = f"{world.replica_arn}: Enabled, SYMMETRIC_DEFAULT, multi-Region replica ({when_west})"
    east_fact = (
        f"{keys['org']}: Enabled, SYMMETRIC_DEFAULT (when condition IsProd is true); "
        f"{keys['disabled']}: Disabled, SYMMETRIC_DEFAULT (when condition IsProd is false)"
    )
    # The scenario with both distributions gives the pointers: eu-west-1 first, us-east-1 second.
    assert json.loads(out.read_text())["facts"] == {
        "golden.yaml#Golden": {"/distributions/0": {"KMS key": west_fact}, "/distributions/1": {"KMS key": east_fact}}
    }
    [model] = models
    [resource] = model["resources"]
    rows = {s["region"]: {f["label"]: f["text"] for f in s["facts"]} for s in resource["sharing"]}
    assert rows == {f"{W1} ({when_west})": {"KMS key": west_fact}, E1: {"KMS key": east_fact}}
