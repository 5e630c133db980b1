"""The key-policy evaluator on every statement shape it claims to understand.

Each case is a policy, a principal and an action with the decision AWS's evaluation
logic gives ("Policy evaluation logic", IAM User Guide; "Determining access to AWS KMS
keys", KMS Developer Guide), or "could not verify" where the answer depends on
something we cannot know.
"""

from __future__ import annotations

import pytest

from auditor.context.policy import Decision, Grant, Principal, RequestFacts, evaluate, grants_from, uses_condition_key

OWNER, TARGET, OTHER = "111122223333", "444455556666", "777788889999"
ORG, OTHER_ORG = "o-a1b2c3d4e5", "o-zzzzzzzzzz"
KEY = f"arn:aws:kms:eu-west-1:{OWNER}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = f"arn:aws:iam::{TARGET}:role/EC2ImageBuilderDistributionCrossAccountRole"
FACTS = RequestFacts(resource=KEY, region="eu-west-1", via_service="ec2.eu-west-1.amazonaws.com")

COPY_ROLE = Principal(account=TARGET, arn=ROLE)  # Image Builder's role in the target account
ACCOUNT = Principal(account=TARGET)  # some principal of the account (a shared AMI's launcher)
MEMBER = Principal(account=TARGET, arn=ROLE, org_id=ORG, org_known=True)
NON_MEMBER = Principal(account=TARGET, arn=ROLE, not_orgs=frozenset({ORG}))
ORGANIZATION = Principal(org_id=ORG)  # any account of the organization


def allow(principal, action="kms:Decrypt", **extra):
    return {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": "*", **extra}


def deny(principal, action="kms:Decrypt", **extra):
    return {"Effect": "Deny", "Principal": principal, "Action": action, "Resource": "*", **extra}


def policy(*statements):
    root = {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OWNER}:root"}, "Action": "kms:*"}
    return {"Version": "2012-10-17", "Statement": [{**root, "Resource": "*"}, *statements]}


ALLOWED, DENIED, NOT_ALLOWED, UNKNOWN = Decision.ALLOWED, Decision.DENIED, Decision.NOT_ALLOWED, Decision.UNKNOWN
ORG_ID = {"StringEquals": {"aws:PrincipalOrgID": ORG}}

CASES = [
    # -- principals ---------------------------------------------------------------------------
    ("only the owner's root", policy(), COPY_ROLE, "kms:Decrypt", NOT_ALLOWED),
    ("account root ARN", policy(allow({"AWS": f"arn:aws:iam::{TARGET}:root"})), COPY_ROLE, "kms:Decrypt", ALLOWED),
    ("bare account id", policy(allow({"AWS": TARGET})), COPY_ROLE, "kms:Decrypt", ALLOWED),
    (
        "account in a list",
        policy(allow({"AWS": [f"arn:aws:iam::{OTHER}:root", TARGET]})),
        ACCOUNT,
        "kms:Decrypt",
        ALLOWED,
    ),
    ("another account", policy(allow({"AWS": f"arn:aws:iam::{OTHER}:root"})), COPY_ROLE, "kms:Decrypt", NOT_ALLOWED),
    ("the role's ARN", policy(allow({"AWS": ROLE})), COPY_ROLE, "kms:Decrypt", ALLOWED),
    (
        "another role",
        policy(allow({"AWS": f"arn:aws:iam::{TARGET}:role/Other"})),
        COPY_ROLE,
        "kms:Decrypt",
        NOT_ALLOWED,
    ),
    ("a role of the account, for its launchers", policy(allow({"AWS": ROLE})), ACCOUNT, "kms:Decrypt", ALLOWED),
    (
        "a unique id (deleted principal)",
        policy(allow({"AWS": "AROAEXAMPLEEXAMPLE"})),
        COPY_ROLE,
        "kms:Decrypt",
        NOT_ALLOWED,
    ),
    ("principal *", policy(allow("*")), COPY_ROLE, "kms:Decrypt", ALLOWED),
    ("principal AWS *", policy(allow({"AWS": "*"})), ACCOUNT, "kms:Decrypt", ALLOWED),
    ("a service principal", policy(allow({"Service": "ec2.amazonaws.com"})), COPY_ROLE, "kms:Decrypt", NOT_ALLOWED),
    (
        "no principal at all",
        policy({"Effect": "Allow", "Action": "kms:*", "Resource": "*"}),
        COPY_ROLE,
        "kms:Decrypt",
        UNKNOWN,
    ),
    # -- organization conditions --------------------------------------------------------------
    ("* with the org, member", policy(allow("*", Condition=ORG_ID)), MEMBER, "kms:Decrypt", ALLOWED),
    ("* with the org, not a member", policy(allow("*", Condition=ORG_ID)), NON_MEMBER, "kms:Decrypt", NOT_ALLOWED),
    ("* with the org, membership unknown", policy(allow("*", Condition=ORG_ID)), COPY_ROLE, "kms:Decrypt", UNKNOWN),
    (
        "* with another org, not ours",
        policy(allow("*", Condition={"StringEquals": {"aws:PrincipalOrgID": OTHER_ORG}})),
        NON_MEMBER,
        "kms:Decrypt",
        UNKNOWN,
    ),
    (
        "* with the org, for the organization",
        policy(allow("*", Condition=ORG_ID)),
        ORGANIZATION,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "one account does not cover the organization",
        policy(allow({"AWS": TARGET})),
        ORGANIZATION,
        "kms:Decrypt",
        NOT_ALLOWED,
    ),
    (
        "org id by wildcard",
        policy(allow("*", Condition={"StringLike": {"aws:PrincipalOrgID": "o-a1b2*"}})),
        MEMBER,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "* with PrincipalAccount",
        policy(allow("*", Condition={"StringEquals": {"aws:PrincipalAccount": [OTHER, TARGET]}})),
        ACCOUNT,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "* with another PrincipalAccount",
        policy(allow("*", Condition={"StringEquals": {"aws:PrincipalAccount": OTHER}})),
        ACCOUNT,
        "kms:Decrypt",
        NOT_ALLOWED,
    ),
    (
        "PrincipalAccount written as a number",
        policy(allow("*", Condition={"StringEquals": {"aws:PrincipalAccount": int(TARGET)}})),
        ACCOUNT,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "PrincipalAccount for a whole organization",
        policy(allow("*", Condition={"StringEquals": {"aws:PrincipalAccount": TARGET}})),
        ORGANIZATION,
        "kms:Decrypt",
        UNKNOWN,
    ),
    # -- the AWS managed key pattern: CallerAccount and ViaService ------------------------------
    (
        "via EC2 in the key's region",
        policy(
            allow(
                {"AWS": "*"},
                Condition={
                    "StringEquals": {"kms:CallerAccount": TARGET, "kms:ViaService": "ec2.eu-west-1.amazonaws.com"}
                },
            )
        ),
        ACCOUNT,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "via another service",
        policy(allow("*", Condition={"StringEquals": {"kms:ViaService": "rds.eu-west-1.amazonaws.com"}})),
        ACCOUNT,
        "kms:Decrypt",
        NOT_ALLOWED,
    ),
    (
        "grants for AWS resources",
        policy(allow({"AWS": TARGET}, "kms:CreateGrant", Condition={"Bool": {"kms:GrantIsForAWSResource": "true"}})),
        COPY_ROLE,
        "kms:CreateGrant",
        ALLOWED,
    ),
    (
        "GrantIsForAWSResource written as a JSON boolean",
        policy(allow({"AWS": TARGET}, "kms:CreateGrant", Condition={"Bool": {"kms:GrantIsForAWSResource": True}})),
        COPY_ROLE,
        "kms:CreateGrant",
        ALLOWED,
    ),
    (
        "GrantIsForAWSResource is absent for Decrypt",
        policy(allow({"AWS": TARGET}, Condition={"Bool": {"kms:GrantIsForAWSResource": "true"}})),
        COPY_ROLE,
        "kms:Decrypt",
        NOT_ALLOWED,
    ),
    # -- explicit deny -------------------------------------------------------------------------
    ("explicit deny wins", policy(allow({"AWS": TARGET}), deny("*")), COPY_ROLE, "kms:Decrypt", DENIED),
    (
        "deny of another action",
        policy(allow({"AWS": TARGET}), deny("*", "kms:Encrypt")),
        COPY_ROLE,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "deny of another account",
        policy(allow({"AWS": TARGET}), deny({"AWS": OTHER})),
        COPY_ROLE,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "deny of one role leaves the account's others",
        policy(allow({"AWS": TARGET}), deny({"AWS": f"arn:aws:iam::{TARGET}:role/X"})),
        ACCOUNT,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "deny outside the org, member",
        policy(allow("*"), deny("*", Condition={"StringNotEquals": {"aws:PrincipalOrgID": ORG}})),
        MEMBER,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "deny outside the org, non-member",
        policy(allow("*"), deny("*", Condition={"StringNotEquals": {"aws:PrincipalOrgID": ORG}})),
        Principal(account=TARGET, org_known=True),
        "kms:Decrypt",
        DENIED,
    ),
    (
        "deny with an unknowable condition",
        policy(allow({"AWS": TARGET}), deny("*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})),
        COPY_ROLE,
        "kms:Decrypt",
        UNKNOWN,
    ),
    (
        "deny beats an unknown allow",
        policy(allow("*", Condition={"StringEquals": {"aws:SourceVpc": "vpc-1"}}), deny({"AWS": TARGET})),
        COPY_ROLE,
        "kms:Decrypt",
        DENIED,
    ),
    # -- NotPrincipal, NotAction, NotResource --------------------------------------------------
    (
        "deny everyone but the owner",
        policy(
            allow({"AWS": TARGET}),
            {**deny("*"), "Principal": None, "NotPrincipal": {"AWS": f"arn:aws:iam::{OWNER}:root"}},
        ),
        COPY_ROLE,
        "kms:Decrypt",
        DENIED,
    ),
    (
        "NotPrincipal naming the target",
        policy(
            allow({"AWS": TARGET}),
            {**deny("*"), "Principal": None, "NotPrincipal": {"AWS": [f"arn:aws:iam::{TARGET}:root", ROLE]}},
        ),
        COPY_ROLE,
        "kms:Decrypt",
        UNKNOWN,
    ),
    (
        "allow everything but decrypt",
        policy({"Effect": "Allow", "Principal": {"AWS": TARGET}, "NotAction": "kms:Decrypt", "Resource": "*"}),
        COPY_ROLE,
        "kms:Decrypt",
        NOT_ALLOWED,
    ),
    (
        "allow everything but decrypt, describe",
        policy({"Effect": "Allow", "Principal": {"AWS": TARGET}, "NotAction": ["kms:Decrypt"], "Resource": "*"}),
        COPY_ROLE,
        "kms:DescribeKey",
        ALLOWED,
    ),
    (
        "deny all but describe",
        policy(
            allow({"AWS": TARGET}, "kms:*"),
            {"Effect": "Deny", "Principal": "*", "NotAction": "kms:Describe*", "Resource": "*"},
        ),
        COPY_ROLE,
        "kms:Decrypt",
        DENIED,
    ),
    ("resource: this key", policy(allow({"AWS": TARGET}, Resource=KEY)), COPY_ROLE, "kms:Decrypt", ALLOWED),
    (
        "resource: another key",
        policy(allow({"AWS": TARGET}, Resource=KEY.replace("1234abcd", "99999999"))),
        COPY_ROLE,
        "kms:Decrypt",
        NOT_ALLOWED,
    ),
    (
        "resource: keys by wildcard",
        policy(allow({"AWS": TARGET}, Resource="arn:aws:kms:*:*:key/*")),
        COPY_ROLE,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "NotResource: this key",
        policy({**allow({"AWS": TARGET}), "Resource": None, "NotResource": KEY}),
        COPY_ROLE,
        "kms:Decrypt",
        NOT_ALLOWED,
    ),
    # -- wildcards in actions ------------------------------------------------------------------
    ("kms:*", policy(allow({"AWS": TARGET}, "kms:*")), COPY_ROLE, "kms:ReEncryptFrom", ALLOWED),
    ("*", policy(allow({"AWS": TARGET}, "*")), COPY_ROLE, "kms:CreateGrant", ALLOWED),
    ("kms:ReEncrypt*", policy(allow({"AWS": TARGET}, "kms:ReEncrypt*")), COPY_ROLE, "kms:ReEncryptTo", ALLOWED),
    (
        "kms:GenerateDataKey*",
        policy(allow({"AWS": TARGET}, ["kms:GenerateDataKey*"])),
        COPY_ROLE,
        "kms:GenerateDataKeyWithoutPlaintext",
        ALLOWED,
    ),
    (
        "kms:GenerateDataKey is not WithoutPlaintext",
        policy(allow({"AWS": TARGET}, "kms:GenerateDataKey")),
        COPY_ROLE,
        "kms:GenerateDataKeyWithoutPlaintext",
        NOT_ALLOWED,
    ),
    ("actions are case-insensitive", policy(allow({"AWS": TARGET}, "KMS:decrypt")), COPY_ROLE, "kms:Decrypt", ALLOWED),
    ("? matches one character", policy(allow({"AWS": TARGET}, "kms:Decryp?")), COPY_ROLE, "kms:Decrypt", ALLOWED),
    # -- conditions we cannot or can decide ----------------------------------------------------
    (
        "allow on a VPC",
        policy(allow({"AWS": TARGET}, Condition={"StringEquals": {"aws:SourceVpc": "vpc-1"}})),
        COPY_ROLE,
        "kms:Decrypt",
        UNKNOWN,
    ),
    (
        "an unknown allow and a sure one",
        policy(allow({"AWS": TARGET}, Condition={"StringEquals": {"aws:SourceVpc": "vpc-1"}}), allow({"AWS": ROLE})),
        COPY_ROLE,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "IfExists on an absent key",
        policy(allow({"AWS": TARGET}, Condition={"BoolIfExists": {"kms:GrantIsForAWSResource": "true"}})),
        COPY_ROLE,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "Null: the key is absent",
        policy(allow({"AWS": TARGET}, Condition={"Null": {"kms:GrantIsForAWSResource": "true"}})),
        COPY_ROLE,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "ForAnyValue on an absent key",
        policy(allow({"AWS": TARGET}, Condition={"ForAnyValue:StringEquals": {"kms:GrantIsForAWSResource": "true"}})),
        COPY_ROLE,
        "kms:Decrypt",
        NOT_ALLOWED,
    ),
    (
        "ForAnyValue on the account",
        policy(allow("*", Condition={"ForAnyValue:StringEquals": {"aws:PrincipalAccount": [TARGET]}})),
        ACCOUNT,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "condition keys are case-insensitive",
        policy(allow("*", Condition={"StringEquals": {"AWS:principalaccount": TARGET}})),
        ACCOUNT,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "PrincipalArn by wildcard",
        policy(allow("*", Condition={"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{TARGET}:role/EC2ImageBuilder*"}})),
        COPY_ROLE,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "PrincipalArn of an unknown launcher",
        policy(allow("*", Condition={"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{TARGET}:role/*"}})),
        ACCOUNT,
        "kms:Decrypt",
        UNKNOWN,
    ),
    (
        "a numeric operator",
        policy(allow({"AWS": TARGET}, Condition={"NumericLessThan": {"kms:RecipientAttestation:NitroTPM": "1"}})),
        COPY_ROLE,
        "kms:Decrypt",
        UNKNOWN,
    ),
    (
        "an unknown qualifier",
        policy(allow({"AWS": TARGET}, Condition={"Sometimes:StringEquals": {"aws:PrincipalAccount": TARGET}})),
        COPY_ROLE,
        "kms:Decrypt",
        UNKNOWN,
    ),
    # -- malformed shapes ----------------------------------------------------------------------
    (
        "a single statement object",
        {"Version": "2012-10-17", "Statement": allow({"AWS": TARGET})},
        COPY_ROLE,
        "kms:Decrypt",
        ALLOWED,
    ),
    (
        "an Effect that is neither",
        policy({**allow({"AWS": TARGET}), "Effect": "allow"}),
        COPY_ROLE,
        "kms:Decrypt",
        UNKNOWN,
    ),
    ("Statement that is not a list of objects", {"Statement": ["x"]}, COPY_ROLE, "kms:Decrypt", UNKNOWN),
    ("no statements", {}, COPY_ROLE, "kms:Decrypt", NOT_ALLOWED),
]


@pytest.mark.parametrize(("policy", "who", "action", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_statement_shapes(policy, who, action, expected):
    for statement in policy.get("Statement", []) if isinstance(policy.get("Statement"), list) else []:
        for key in ("Principal", "Resource"):
            if isinstance(statement, dict) and key in statement and statement[key] is None:
                del statement[key]
    answer = evaluate(policy, who, action, FACTS)
    assert answer.decision is expected, answer.reason


def test_reasons_name_the_statement():
    answer = evaluate(
        policy(allow({"AWS": TARGET}), {**deny("*"), "Sid": "NoDecrypt"}), COPY_ROLE, "kms:Decrypt", FACTS
    )
    assert answer.reason == "statement 'NoDecrypt' denies kms:Decrypt"
    vpc = {**allow({"AWS": TARGET}, Condition={"StringEquals": {"aws:SourceVpc": "vpc-1"}}), "Sid": "Vpc"}
    answer = evaluate(policy(vpc), COPY_ROLE, "kms:Decrypt", FACTS)
    assert answer.reason == "statement 'Vpc' has a condition StringEquals on aws:SourceVpc that cannot be evaluated"
    assert evaluate(policy(), COPY_ROLE, "kms:Decrypt", FACTS).reason == "nothing allows kms:Decrypt"
    assert evaluate(policy(deny("*")), COPY_ROLE, "kms:Decrypt", FACTS).reason == "statement 2 denies kms:Decrypt"


GRANTED = [
    {"GranteePrincipal": f"arn:aws:iam::{TARGET}:root", "Operations": ["Decrypt", "CreateGrant"]},
    {"GranteePrincipal": ROLE, "Operations": ["ReEncryptFrom"], "Constraints": {"EncryptionContextSubset": {"a": "b"}}},
    {"GranteePrincipal": f"arn:aws:iam::{OTHER}:root", "Operations": ["DescribeKey"]},
    {"GranteePrincipal": "ec2.amazonaws.com"},
]


@pytest.mark.parametrize(
    ("who", "action", "expected"),
    [
        (COPY_ROLE, "kms:Decrypt", ALLOWED),  # a grant to the account covers its role
        (ACCOUNT, "kms:CreateGrant", ALLOWED),
        (COPY_ROLE, "kms:ReEncryptFrom", UNKNOWN),  # only under an encryption context we cannot predict
        (COPY_ROLE, "kms:DescribeKey", NOT_ALLOWED),  # granted to another account
        (ORGANIZATION, "kms:Decrypt", NOT_ALLOWED),  # grants name principals, never organizations
    ],
)
def test_grants(who, action, expected):
    grants = grants_from(GRANTED)
    assert grants[0] == Grant(f"arn:aws:iam::{TARGET}:root", frozenset({"Decrypt", "CreateGrant"}), False)
    assert evaluate(policy(), who, action, FACTS, grants).decision is expected


def test_a_grant_does_not_override_an_explicit_deny():
    grants = grants_from(GRANTED)
    assert evaluate(policy(deny("*")), COPY_ROLE, "kms:Decrypt", FACTS, grants).decision is DENIED


def test_trust_policy_admits_image_builders_role_through_the_account():
    """Trust policies have no Resource; the source account's root admits its service-linked role."""
    linked = Principal(
        account=OWNER,
        arn=f"arn:aws:iam::{OWNER}:role/aws-service-role/imagebuilder.amazonaws.com/AWSServiceRoleForImageBuilder",
    )
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OWNER}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    assert evaluate(trust, linked, "sts:AssumeRole", RequestFacts()).decision is ALLOWED
    trust["Statement"][0]["Principal"] = {"AWS": f"arn:aws:iam::{OTHER}:root"}
    assert evaluate(trust, linked, "sts:AssumeRole", RequestFacts()).decision is NOT_ALLOWED


def test_uses_condition_key():
    assert uses_condition_key(
        policy(allow("*", Condition={"StringEquals": {"AWS:PrincipalOrgId": ORG}})), "aws:PrincipalOrgID"
    )
    assert not uses_condition_key(policy(allow("*")), "aws:PrincipalOrgID")
