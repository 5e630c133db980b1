"""Just enough IAM policy evaluation to answer "may this principal do that to this key?".

Used for KMS key policies and grants (who can decrypt an AMI) and for a role's trust
policy (may Image Builder assume the distribution role). It follows the evaluation
logic AWS documents in "Policy evaluation logic" (IAM User Guide) and "Determining
access to AWS KMS keys" (KMS Developer Guide) for one resource-based policy:

- an explicit ``Deny`` that applies wins over everything;
- otherwise an ``Allow`` that applies (or, for KMS, a grant) allows;
- otherwise the action is not allowed (implicit deny).

Every test is three-valued: a statement whose principal, action, resource or condition
cannot be decided from what we know is *unknown*, and an unknown that could change the
answer makes the answer ``UNKNOWN`` with the reason, never a guess. Condition keys we
can answer are listed in ``RequestFacts``; anything else (``aws:SourceVpc``,
``aws:PrincipalTag/...``, encryption context...) is unknown.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ACCOUNT_RE = re.compile(r"^\d{12}$")
ROOT_RE = re.compile(r"^arn:[^:]+:iam::(\d{12}):root$")
IAM_PRINCIPAL_RE = re.compile(r"^arn:[^:]+:(?:iam|sts)::(\d{12}):.+$")


class Decision(enum.Enum):
    ALLOWED = "allowed"
    DENIED = "denied"  # an explicit Deny applies
    NOT_ALLOWED = "not allowed"  # nothing allows it (implicit deny)
    UNKNOWN = "could not verify"


@dataclass(frozen=True)
class Answer:
    decision: Decision
    reason: str = ""


@dataclass(frozen=True)
class Principal:
    """Who would make the request.

    ``account`` with ``arn``: exactly that IAM role (Image Builder's distribution role).
    ``account`` without ``arn``: some principal of that account, chosen by its owner
    (whoever launches a shared AMI there). Neither: any account of ``org_id``.
    ``org_id`` is the principal's organization when known; ``not_orgs`` are
    organizations it is known not to belong to (the scanning organization, when the
    account is not in its member list).
    """

    account: str | None = None
    arn: str | None = None
    org_id: str | None = None
    not_orgs: frozenset[str] = frozenset()
    org_known: bool = False  # True: org_id is the principal's organization (None: none at all)

    def describe(self) -> str:
        if self.arn:
            return self.arn
        if self.account:
            return f"account {self.account}"
        return f"accounts of organization {self.org_id}"


# The three-valued results of matching: True, False or None (unknown).
Tri = bool | None

_ABSENT = object()  # a condition key known to be missing from the request


@dataclass(frozen=True)
class RequestFacts:
    """What is known about the request besides the principal and action."""

    resource: str | None = None  # the key or role ARN; None: match "*" only
    region: str | None = None  # for kms:ViaService (EC2 in this region calls KMS)
    via_service: str | None = None  # e.g. "ec2.eu-west-1.amazonaws.com"
    extra: Mapping[str, Any] = field(default_factory=dict)  # lower-case key -> value


def _tri_and(values: Iterable[Tri]) -> Tri:
    result: Tri = True
    for value in values:
        if value is False:
            return False
        if value is None:
            result = None
    return result


def _tri_or(values: Iterable[Tri]) -> Tri:
    result: Tri = False
    for value in values:
        if value is True:
            return True
        if value is None:
            result = None
    return result


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, *, case: bool = True) -> bool:
    """IAM wildcards: ``*`` any run, ``?`` one character; nothing else is special."""
    return _compiled(pattern, case).fullmatch(value) is not None


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str, case: bool) -> re.Pattern:
    # One policy is evaluated for every configuration that uses its key: compile once.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, 0 if case else re.IGNORECASE)


# -- principals -----------------------------------------------------------------------
def _entry_account(entry: str) -> str | None:
    if ACCOUNT_RE.match(entry):
        return entry
    match = ROOT_RE.match(entry) or IAM_PRINCIPAL_RE.match(entry)
    return match.group(1) if match else None


def _principal_cover(element: Any, who: Principal) -> str:
    """How much of ``who`` a Principal/NotPrincipal element names: all, some, none, unknown."""
    if element == "*":
        return "all"
    if not isinstance(element, dict):
        return "unknown"
    entries = [e for e in _as_list(element.get("AWS")) if isinstance(e, str)]
    if "*" in entries:
        return "all"
    best = "none"
    for entry in entries:
        account = _entry_account(entry)
        if account is None:
            continue  # a unique id (a deleted principal) or a malformed entry: names no one we ask about
        if who.account is None:
            best = "some"  # one account of the organization, not all of them
            continue
        if account != who.account:
            continue
        if ROOT_RE.match(entry) or ACCOUNT_RE.match(entry):
            return "all"  # the account: its own IAM policies decide, for every principal in it
        if who.arn is not None:
            if entry == who.arn:
                return "all"
            continue
        best = "some"  # a particular principal of the account
    return best


def _principal_applies(statement: Mapping[str, Any], who: Principal, effect: str) -> tuple[Tri, str]:
    if "Principal" in statement:
        cover = _principal_cover(statement["Principal"], who)
        if cover == "unknown":
            return None, "a Principal element that is neither '*' nor an object"
        if cover == "all":
            return True, ""
        if cover == "some":
            # Allow: some principal of the account (or org) may; Deny: others still may.
            return (effect == "Allow" and who.account is not None), ""
        return False, ""
    if "NotPrincipal" in statement:
        if _principal_cover(statement["NotPrincipal"], who) == "none":
            return True, ""
        # Whether the principal escapes depends on which of its account, role and
        # session ARNs are listed (IAM User Guide, "AWS JSON policy elements:
        # NotPrincipal"); the session name is not ours to know.
        return None, f"a NotPrincipal element that names {who.describe()} or part of it"
    return None, "a statement without Principal"


# -- actions and resources ---------------------------------------------------------------
def _action_applies(statement: Mapping[str, Any], action: str) -> Tri:
    if "Action" in statement:
        return any(_glob(a, action, case=False) for a in _as_list(statement["Action"]) if isinstance(a, str))
    if "NotAction" in statement:
        return not any(_glob(a, action, case=False) for a in _as_list(statement["NotAction"]) if isinstance(a, str))
    return None


def _resource_applies(statement: Mapping[str, Any], resource: str | None) -> Tri:
    def matches(patterns: list) -> Tri:
        if "*" in patterns:
            return True
        if resource is None:
            return None
        return any(_glob(p, resource) for p in patterns if isinstance(p, str))

    if "Resource" in statement:
        return matches(_as_list(statement["Resource"]))
    if "NotResource" in statement:
        hit = matches(_as_list(statement["NotResource"]))
        return None if hit is None else not hit
    return True  # trust policies have no Resource


# -- conditions -----------------------------------------------------------------------
_STRING_OPS = {
    "stringequals": ("eq", False, True),
    "stringnotequals": ("eq", True, True),
    "stringequalsignorecase": ("eq", False, False),
    "stringnotequalsignorecase": ("eq", True, False),
    "stringlike": ("like", False, True),
    "stringnotlike": ("like", True, True),
    "arnequals": ("like", False, True),
    "arnlike": ("like", False, True),
    "arnnotequals": ("like", True, True),
    "arnnotlike": ("like", True, True),
}


def _context_value(key: str, who: Principal, action: str, facts: RequestFacts) -> Any:
    """The request's value for a condition key, ``_ABSENT``, or None when unknown."""
    key = key.lower()
    if key in facts.extra:
        return facts.extra[key]
    if key in ("aws:principalaccount", "kms:calleraccount"):
        return who.account
    if key == "aws:principalorgid":
        if who.account is None:
            return who.org_id
        return (who.org_id if who.org_id is not None else _ABSENT) if who.org_known else None
    if key == "aws:principalarn":
        return who.arn
    if key == "aws:principaltype":
        return "AssumedRole" if who.arn and ":role/" in who.arn else None
    if key == "aws:principalisawsservice":
        return "false" if who.account is not None else None
    if key == "kms:viaservice":
        return facts.via_service if facts.via_service is not None else None
    if key == "kms:grantisforawsresource":
        # EC2 creates the grants EBS needs for the volumes it makes: an AWS resource.
        return "true" if action.lower() == "kms:creategrant" and facts.via_service else _ABSENT
    if key == "aws:securetransport":
        return "true"
    if key == "aws:requestedregion":
        return facts.region
    return None


def _condition_text(value: Any) -> Any:
    """Policy JSON may write booleans and numbers where IAM compares strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _compare(op: str, case: bool, pattern: str, value: str) -> bool:
    if op == "eq":
        return pattern == value if case else pattern.lower() == value.lower()
    return _glob(pattern, value, case=case)


def _condition_key(operator: str, key: str, wanted: Any, who: Principal, action: str, facts: RequestFacts) -> Tri:
    op_name = operator.lower()
    qualifier = None
    if ":" in op_name:
        qualifier, op_name = op_name.split(":", 1)
        if qualifier not in ("foranyvalue", "forallvalues"):
            return None
    if_exists = op_name.endswith("ifexists")
    if if_exists:
        op_name = op_name[: -len("ifexists")]
    value = _context_value(key, who, action, facts)
    values = [_condition_text(v) for v in _as_list(wanted)]
    if op_name == "null":
        if value is None:
            return None
        absent = value is _ABSENT
        return _tri_or((str(v).lower() == "true") == absent for v in values)
    if value is None:
        # Unknown, unless the principal's organization is unknown but known not to be the one named.
        positive = op_name in _STRING_OPS and not _STRING_OPS[op_name][1]
        named = [v for v in values if isinstance(v, str) and "*" not in v]
        if key.lower() == "aws:principalorgid" and positive and values and len(named) == len(values):
            return False if who.not_orgs.issuperset(named) else None
        return None
    if value is _ABSENT:
        if if_exists or qualifier == "forallvalues":
            return True
        if qualifier == "foranyvalue":
            return False
        negated = op_name in _STRING_OPS and _STRING_OPS[op_name][1]
        return bool(negated)
    if op_name == "bool":
        return _tri_or(str(v).lower() == str(value).lower() for v in values)
    if op_name not in _STRING_OPS:
        return None  # Numeric*, Date*, IpAddress, Binary: not something we can know
    kind, negated, case = _STRING_OPS[op_name]
    hit = any(isinstance(v, str) and _compare(kind, case, v, str(value)) for v in values)
    return not hit if negated else hit


def _condition_applies(
    statement: Mapping[str, Any], who: Principal, action: str, facts: RequestFacts
) -> tuple[Tri, str]:
    block = statement.get("Condition")
    if block is None:
        return True, ""
    if not isinstance(block, dict):
        return None, "a Condition that is not an object"
    unknown = ""
    results = []
    for operator, keys in block.items():
        if not isinstance(keys, dict):
            return None, f"condition {operator} is not an object"
        for key, wanted in keys.items():
            result = _condition_key(operator, key, wanted, who, action, facts)
            if result is None and not unknown:
                unknown = f"a condition {operator} on {key} that cannot be evaluated"
            results.append(result)
    outcome = _tri_and(results)
    return outcome, unknown if outcome is None else ""


# -- statements and policies --------------------------------------------------------------
def _label(statement: Mapping[str, Any], index: int) -> str:
    sid = statement.get("Sid")
    return f"statement {sid!r}" if isinstance(sid, str) and sid else f"statement {index + 1}"


def statements(policy: Any) -> list[Mapping[str, Any]]:
    """The statements of a policy document (a single statement object is allowed)."""
    if not isinstance(policy, dict):
        return []
    body = policy.get("Statement")
    return [s for s in _as_list(body) if isinstance(s, dict)]


def _applies(statement: Mapping[str, Any], who: Principal, action: str, facts: RequestFacts) -> tuple[Tri, str]:
    effect = statement.get("Effect")
    if effect not in ("Allow", "Deny"):
        return None, "an Effect that is neither Allow nor Deny"
    action_hit = _action_applies(statement, action)
    if action_hit is False:
        return False, ""
    resource_hit = _resource_applies(statement, facts.resource)
    if resource_hit is False:
        return False, ""
    principal_hit, why_principal = _principal_applies(statement, who, effect)
    if principal_hit is False:
        return False, ""
    condition_hit, why_condition = _condition_applies(statement, who, action, facts)
    if condition_hit is False:
        return False, ""
    if action_hit is None:
        return None, "a statement without Action"
    if resource_hit is None:
        return None, "a Resource other than '*' or this resource"
    if principal_hit is None:
        return None, why_principal
    if condition_hit is None:
        return None, why_condition
    return True, ""


@dataclass(frozen=True)
class Grant:
    """A KMS grant as ListGrants returns it, reduced to what decides access."""

    grantee: str
    operations: frozenset[str]
    constrained: bool  # encryption-context constraints: EBS's context cannot be predicted


def grants_from(listing: Sequence[Mapping[str, Any]]) -> list[Grant]:
    out = []
    for g in listing:
        if isinstance(g, Mapping) and isinstance(g.get("GranteePrincipal"), str):
            ops = frozenset(o for o in g.get("Operations") or [] if isinstance(o, str))
            out.append(Grant(g["GranteePrincipal"], ops, bool(g.get("Constraints"))))
    return out


def _grant_allows(grants: Sequence[Grant], who: Principal, action: str) -> tuple[Tri, str]:
    operation = action.split(":", 1)[-1]
    result: Tri = False
    for grant in grants:
        if operation not in grant.operations or who.account is None:
            continue
        cover = _principal_cover({"AWS": grant.grantee}, who)
        if cover == "none":
            continue
        if cover == "some" and who.arn is not None:
            continue
        if grant.constrained:
            result = None
            continue
        return True, ""
    return result, "a grant with encryption-context constraints" if result is None else ""


def evaluate(
    policy: Any,
    who: Principal,
    action: str,
    facts: RequestFacts,
    grants: Sequence[Grant] = (),
) -> Answer:
    """Decide one action for one principal against one resource policy (and its grants)."""
    body = statements(policy)
    if isinstance(policy, dict) and "Statement" in policy and not body:
        return Answer(Decision.UNKNOWN, "the policy's Statement is not a list of objects")
    allow_unknown = deny_unknown = ""
    allowed_by = ""
    for index, statement in enumerate(body):
        hit, why = _applies(statement, who, action, facts)
        if hit is False:
            continue
        if statement.get("Effect") == "Deny":
            if hit:
                return Answer(Decision.DENIED, f"{_label(statement, index)} denies {action}")
            deny_unknown = deny_unknown or f"{_label(statement, index)} (Deny) has {why}"
        elif hit:
            allowed_by = allowed_by or _label(statement, index)
        else:
            allow_unknown = allow_unknown or f"{_label(statement, index)} has {why}"
    if deny_unknown:
        return Answer(Decision.UNKNOWN, deny_unknown)
    if allowed_by:
        return Answer(Decision.ALLOWED, f"allowed by {allowed_by}")
    granted, why = _grant_allows(grants, who, action)
    if granted:
        return Answer(Decision.ALLOWED, "allowed by a grant")
    if allow_unknown:
        return Answer(Decision.UNKNOWN, allow_unknown)
    if granted is None:
        return Answer(Decision.UNKNOWN, why)
    return Answer(Decision.NOT_ALLOWED, f"nothing allows {action}")


def evaluate_all(
    policy: Any,
    who: Principal,
    actions: Sequence[str],
    facts: RequestFacts,
    grants: Sequence[Grant] = (),
) -> dict[str, Answer]:
    """``evaluate`` for each action."""
    return {action: evaluate(policy, who, action, facts, grants) for action in actions}


def uses_condition_key(policy: Any, key: str) -> bool:
    """Whether any statement conditions on ``key`` (case-insensitive)."""
    key = key.lower()
    for statement in statements(policy):
        block = statement.get("Condition")
        if isinstance(block, dict):
            for keys in block.values():
                if isinstance(keys, dict) and any(k.lower() == key for k in keys):
                    return True
    return False
