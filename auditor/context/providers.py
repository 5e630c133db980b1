"""The built-in fact providers: read-only calls, one per fact, registered like a plugin's.

Each provider names the IAM actions it needs (``actions``); the README's read-only
policy lists exactly their union. "Does not exist" is a fact (the value None), so a
missing key, role or template is a finding; any other failure is a ``CallFailed``
and the rule says it could not verify.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from auditor.context import Caller, CallFailed, FactKey, FactStore, Unavailable
from auditor.hookspecs import hookimpl

KEY_ARN_RE = re.compile(r"^arn:[^:]+:kms:[^:]+:\d{12}:key/.+$")


def _unless_absent(fetch: Callable[[], Any], *codes: str) -> Any:
    """``fetch()``, or None when the service answers that the thing does not exist
    (one of ``codes``; a code ending in "." matches every code it starts)."""
    try:
        return fetch()
    except CallFailed as exc:
        if exc.code in codes or any(exc.code.startswith(c) for c in codes if c.endswith(".")):
            return None
        raise


def _pages(call: Caller, service: str, operation: str, token_in: str, token_out: str, **params: Any) -> Iterator[dict]:
    """Every page of a paginated call (each service names its token differently)."""
    token = None
    while True:
        page = call(service, operation, **params, **({token_in: token} if token else {}))
        yield page
        token = page.get(token_out)
        if not token:
            return


@dataclass(frozen=True)
class KmsKey:
    """``kms:DescribeKey`` on the key id as written (key id, key ARN, alias or alias ARN)."""

    kind: str = "kms-key"
    actions: tuple[str, ...] = ("kms:DescribeKey",)

    def fetch(self, key: FactKey, call: Caller, facts: FactStore) -> Any:
        return _unless_absent(lambda: call("kms", "describe_key", KeyId=key.id)["KeyMetadata"], "NotFoundException")


def _resolved_arn(key: FactKey, facts: FactStore) -> str | None:
    """The key ARN behind an id as written (DescribeKey resolves ids and aliases)."""
    if KEY_ARN_RE.match(key.id):
        return key.id
    described = facts.get(FactKey("kms-key", key.account, key.region, key.id))
    if described.error is not None:
        raise Unavailable(described.error)
    return described.value.get("Arn") if isinstance(described.value, dict) else None


class _ByKeyArn:
    """A fact the KMS API wants by key id or ARN, not alias: the id as written is first
    resolved with the ``kms-key`` fact, and the value is cached under the key's ARN, so
    two spellings of one key fetch it once."""

    kind: str

    def fetch(self, key: FactKey, call: Caller, facts: FactStore) -> Any:
        arn = _resolved_arn(key, facts)
        if arn is None:
            return None
        if arn != key.id:
            return _through(facts, FactKey(self.kind, key.account, key.region, arn))
        return self.fetch_arn(arn, call)

    def fetch_arn(self, arn: str, call: Caller) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class KmsKeyPolicy(_ByKeyArn):
    """``kms:GetKeyPolicy`` (policy ``default``), parsed."""

    kind: str = "kms-key-policy"
    actions: tuple[str, ...] = ("kms:GetKeyPolicy",)

    def fetch_arn(self, arn: str, call: Caller) -> Any:
        text = call("kms", "get_key_policy", KeyId=arn, PolicyName="default").get("Policy") or "{}"
        return json.loads(text)


@dataclass(frozen=True)
class KmsGrants(_ByKeyArn):
    """``kms:ListGrants``, every page."""

    kind: str = "kms-grants"
    actions: tuple[str, ...] = ("kms:ListGrants",)

    def fetch_arn(self, arn: str, call: Caller) -> Any:
        pages = _pages(call, "kms", "list_grants", "Marker", "NextMarker", KeyId=arn)
        return [grant for page in pages for grant in page.get("Grants") or []]


def _through(facts: FactStore, key: FactKey) -> Any:
    fact = facts.get(key)
    if fact.error is not None:
        raise Unavailable(fact.error)
    return fact.value


def _policy_document(value: Any) -> Any:
    """IAM returns policy documents URL-encoded; botocore usually decodes them already."""
    if isinstance(value, str):
        try:
            return json.loads(urllib.parse.unquote(value))
        except ValueError:
            return None
    return value


@dataclass(frozen=True)
class IamRole:
    """``iam:GetRole``: the role's ARN and trust policy, or None when it does not exist."""

    kind: str = "iam-role"
    actions: tuple[str, ...] = ("iam:GetRole",)

    def fetch(self, key: FactKey, call: Caller, facts: FactStore) -> Any:
        role = _unless_absent(lambda: call("iam", "get_role", RoleName=key.id)["Role"], "NoSuchEntity")
        if role is None:
            return None
        trust = _policy_document(role.get("AssumeRolePolicyDocument"))
        return {"Arn": role.get("Arn"), "AssumeRolePolicyDocument": trust}


@dataclass(frozen=True)
class IamRoleAttachedPolicies:
    """``iam:ListAttachedRolePolicies`` (every page): the managed policy ARNs, or None."""

    kind: str = "iam-role-attached-policies"
    actions: tuple[str, ...] = ("iam:ListAttachedRolePolicies",)

    def fetch(self, key: FactKey, call: Caller, facts: FactStore) -> Any:
        def listed() -> list[str]:
            pages = _pages(call, "iam", "list_attached_role_policies", "Marker", "Marker", RoleName=key.id)
            return [p.get("PolicyArn", "") for page in pages for p in page.get("AttachedPolicies") or []]

        return _unless_absent(listed, "NoSuchEntity")


@dataclass(frozen=True)
class ImageBlockPublicAccess:
    """``ec2:GetImageBlockPublicAccessState``: "block-new-sharing" or "unblocked", and who manages it."""

    kind: str = "ec2-image-block-public-access"
    actions: tuple[str, ...] = ("ec2:GetImageBlockPublicAccessState",)

    def fetch(self, key: FactKey, call: Caller, facts: FactStore) -> Any:
        answer = call("ec2", "get_image_block_public_access_state")
        return {"state": answer.get("ImageBlockPublicAccessState"), "managed_by": answer.get("ManagedBy")}


@dataclass(frozen=True)
class LaunchTemplate:
    """``ec2:DescribeLaunchTemplates`` by id (``id:lt-...``) or name (``name:...``); None when missing."""

    kind: str = "ec2-launch-template"
    actions: tuple[str, ...] = ("ec2:DescribeLaunchTemplates",)

    def fetch(self, key: FactKey, call: Caller, facts: FactStore) -> Any:
        by, _, value = key.id.partition(":")
        params = {"LaunchTemplateIds": [value]} if by == "id" else {"LaunchTemplateNames": [value]}
        templates = _unless_absent(
            lambda: call("ec2", "describe_launch_templates", **params).get("LaunchTemplates"),
            "InvalidLaunchTemplateId.",
            "InvalidLaunchTemplateName.",
        )
        return templates[0] if templates else None


@dataclass(frozen=True)
class DefaultVpc:
    """``ec2:DescribeVpcs`` filtered on ``isDefault``: the default VPC's id, or None."""

    kind: str = "ec2-default-vpc"
    actions: tuple[str, ...] = ("ec2:DescribeVpcs",)

    def fetch(self, key: FactKey, call: Caller, facts: FactStore) -> Any:
        vpcs = call("ec2", "describe_vpcs", Filters=[{"Name": "isDefault", "Values": ["true"]}]).get("Vpcs") or []
        return vpcs[0].get("VpcId") if vpcs else None


@dataclass(frozen=True)
class S3Bucket:
    """Whether a bucket exists and belongs to the account: "owned", "missing" or "other-owner".

    ``s3:HeadBucket`` (permission ``s3:ListBucket``) with ``ExpectedBucketOwner`` set
    to the account: S3 answers 403 when the owner differs, so a 403 is asked again
    without it; a bucket that then answers belongs to someone else, and a second 403
    cannot tell "someone else's" from "denied", so it stays unknown.
    """

    kind: str = "s3-bucket"
    actions: tuple[str, ...] = ("s3:ListBucket",)

    def fetch(self, key: FactKey, call: Caller, facts: FactStore) -> Any:
        try:
            call("s3", "head_bucket", Bucket=key.id, ExpectedBucketOwner=key.account)
            return "owned"
        except CallFailed as exc:
            if exc.code in ("404", "NoSuchBucket", "NotFound"):
                return "missing"
            if exc.code not in ("403", "AccessDenied"):
                raise
        try:
            call("s3", "head_bucket", Bucket=key.id)
        except CallFailed as exc:
            if exc.code in ("404", "NoSuchBucket", "NotFound"):
                return "missing"
            if exc.code in ("403", "AccessDenied"):
                # Owned by another account, or we may not read it: S3 does not say which.
                raise CallFailed("s3:HeadBucket", "AccessDenied") from None
            raise
        return "other-owner"


@dataclass(frozen=True)
class EcrRepository:
    """``ecr:DescribeRepositories`` for one name: the repository, or None when missing."""

    kind: str = "ecr-repository"
    actions: tuple[str, ...] = ("ecr:DescribeRepositories",)

    def fetch(self, key: FactKey, call: Caller, facts: FactStore) -> Any:
        repos = _unless_absent(
            lambda: call("ecr", "describe_repositories", repositoryNames=[key.id]).get("repositories"),
            "RepositoryNotFoundException",
        )
        return repos[0] if repos else None


@dataclass(frozen=True)
class Organization:
    """``organizations:DescribeOrganization`` for the scanning credentials: id and management account.

    None when the account is not in an organization. Member accounts may call it too.
    """

    kind: str = "organization"
    actions: tuple[str, ...] = ("organizations:DescribeOrganization",)

    def fetch(self, key: FactKey, call: Caller, facts: FactStore) -> Any:
        org = _unless_absent(
            lambda: call("organizations", "describe_organization")["Organization"], "AWSOrganizationsNotInUseException"
        )
        if org is None:
            return None
        return {"Id": org.get("Id"), "MasterAccountId": org.get("MasterAccountId"), "Arn": org.get("Arn")}


@dataclass(frozen=True)
class OrganizationAccounts:
    """``organizations:ListAccounts`` (every page): account id -> status ("ACTIVE", "SUSPENDED"...).

    Only the management account or a delegated administrator may list the members.
    """

    kind: str = "organization-accounts"
    actions: tuple[str, ...] = ("organizations:ListAccounts",)

    def fetch(self, key: FactKey, call: Caller, facts: FactStore) -> Any:
        accounts: dict[str, str] = {}
        for page in _pages(call, "organizations", "list_accounts", "NextToken", "NextToken"):
            for account in page.get("Accounts") or []:
                if isinstance(account.get("Id"), str):
                    accounts[account["Id"]] = str(account.get("State") or account.get("Status") or "UNKNOWN")
        return accounts


BUILTIN_PROVIDERS = (
    KmsKey(),
    KmsKeyPolicy(),
    KmsGrants(),
    IamRole(),
    IamRoleAttachedPolicies(),
    ImageBlockPublicAccess(),
    LaunchTemplate(),
    DefaultVpc(),
    S3Bucket(),
    EcrRepository(),
    Organization(),
    OrganizationAccounts(),
)


@hookimpl
def auditor_add_fact_providers():
    return list(BUILTIN_PROVIDERS)
