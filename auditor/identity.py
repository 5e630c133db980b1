"""What a finding is about, independent of where and in which order it is written.

A finding's fingerprint is its rule, the *resource* it is in and the *meaning* of its
path. Rules yield plain JSON Pointers (``/distributions/0/...``); :func:`semantic_key`
rewrites every list index into what identifies the entry, so the edits people make
every day leave fingerprints alone:

- a distribution is known by its ``region`` (unique per configuration; Image Builder
  rejects two distributions to one region), so inserting or reordering distributions
  changes nothing;
- members of plain lists (account ids, ARNs, user groups, container tags) are known by
  their value;
- launch-template entries by account and template id, fast-launch entries by account
  and launch template (id or name), SSM parameter entries by account and parameter name.

Two entries that share an identity (the same region twice, an account listed twice)
are told apart by occurrence (``#2``), the first keeping the plain key.

:func:`resource_identity` names the resource without its file, so moving a resource to
another file or renaming the file keeps its findings:

- an ARN when one is known (live scans, saved API responses, snapshots): a live scan and
  a scan of its snapshot files agree;
- ``cloudformation:<logical id>``, ``terraform:<address>`` for templates and modules;
- a plain JSON file without an ARN (an input document for ``create-distribution-
  configuration``) by its ``name``, which AWS makes unique per account and region;
- a JSON file with neither (the CLI's ``--distributions`` list) by its file and list
  element: nothing else identifies it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any

from auditor.model import Target, Unresolved, escape_pointer_token


def _member(name: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda entry: entry.get(name)


def _launch_template(entry: Mapping[str, Any]) -> Any:
    template = entry.get("launchTemplate")
    if isinstance(template, Mapping):
        return template.get("launchTemplateId", template.get("launchTemplateName"))
    return template


# List member -> (label, how to read it) pairs that identify one of its entries.
ENTRY_IDENTITY: dict[str, tuple[tuple[str, Callable[[Mapping[str, Any]], Any]], ...]] = {
    "distributions": (("region", _member("region")),),
    "launchTemplateConfigurations": (
        ("accountId", _member("accountId")),
        ("launchTemplateId", _member("launchTemplateId")),
    ),
    "fastLaunchConfigurations": (("accountId", _member("accountId")), ("launchTemplate", _launch_template)),
    "ssmParameterConfigurations": (
        ("amiAccountId", _member("amiAccountId")),
        ("parameterName", _member("parameterName")),
    ),
}
# For lists of objects the API does not define (CloudFormation Tags written beside
# Properties, a plugin's own shapes): the first of these members an entry has.
GENERIC_IDENTITY = ("Key", "key", "Name", "name", "Id", "id")


def _literal(value: Any) -> str:
    """A value as it appears inside a key: JSON for literals, <expression> when unresolved."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)  # what json.dumps(value, ensure_ascii=False) writes, in C
    if kind is int or value is None or kind is bool:
        return "null" if value is None else "true" if value is True else "false" if value is False else str(value)
    if isinstance(value, Unresolved):
        return "<" + json.dumps(value.expression, ensure_ascii=False) + ">"
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _entry_selector(list_name: str, entry: Any, index: int) -> str:
    """What identifies one list entry, without its position (except as a last resort)."""
    if not isinstance(entry, Mapping):
        if isinstance(entry, list):
            return f"[#{index}]"  # a list of lists: nothing but position
        return f"[{_literal(entry)}]"
    fields = ENTRY_IDENTITY.get(list_name)
    if fields is not None:
        return "[" + ",".join(f"{label}={_literal(read(entry))}" for label, read in fields) + "]"
    for name in GENERIC_IDENTITY:
        if name in entry:
            return f"[{name}={_literal(entry[name])}]"
    return f"[#{index}]"


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


class SemanticKeys:
    """Semantic keys of pointers into one configuration, each list's entries read once."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self._selectors: dict[int, list[str]] = {}  # id(list) -> selector of each entry

    def _selector(self, list_name: str, values: list, index: int) -> str:
        selectors = self._selectors.get(id(values))
        if selectors is None:
            seen: dict[str, int] = {}
            selectors = []
            for i, entry in enumerate(values):
                plain = _entry_selector(list_name, entry, i)
                seen[plain] = seen.get(plain, 0) + 1
                selectors.append(plain if seen[plain] == 1 else f"{plain}#{seen[plain]}")
            self._selectors[id(values)] = selectors
        return selectors[index]

    def __call__(self, pointer: str) -> str:
        """The meaning of a JSON Pointer into the configuration: list indices become identities.

        ``/distributions/1/amiDistributionConfiguration/targetAccountIds/0`` in a
        configuration whose second distribution is to eu-west-1 and whose first target
        account is 444455556666 becomes
        ``/distributions[region="eu-west-1"]/amiDistributionConfiguration/targetAccountIds["444455556666"]``.
        A token the configuration does not have (a member that is missing) is kept as it is.
        """
        out: list[str] = []
        value: Any = self.config
        parent_name = ""
        for raw in pointer.split("/")[1:] if pointer else ():
            token = _unescape(raw)
            if isinstance(value, list) and out and token.isdigit() and int(token) < len(value):
                index = int(token)
                out[-1] += escape_pointer_token(self._selector(parent_name, value, index))
                value = value[index]
                continue
            out.append("/" + escape_pointer_token(token))
            parent_name = token
            # Past the configuration (a missing member) the rest of the pointer stays as written.
            value = value[token] if isinstance(value, Mapping) and token in value else None
        return "".join(out)


def semantic_key(config: Any, pointer: str) -> str:
    """The semantic key of one pointer (see :class:`SemanticKeys`)."""
    return SemanticKeys(config)(pointer)


def resource_identity(target: Target) -> str:
    """The resource a target is, without its file (see the module docstring)."""
    return target.identity


def disambiguate(prints: Sequence[tuple[str, str, str]]) -> list[str]:
    """Make fingerprints unique within one scan.

    ``prints`` are ``(fingerprint, target id, message)`` per finding, in report order.
    Two findings share a fingerprint when two targets share a resource identity (copies
    of one template with the same logical id in two files) or when a rule reports two
    problems at one path. Code scanning and GitLab keep only one result per fingerprint,
    so each copy is qualified by its target (its file); within one target the second and
    later problems by occurrence, the first keeping the plain fingerprint.
    """
    groups: dict[str, list[int]] = {}
    for i, (fp, _, _) in enumerate(prints):
        groups.setdefault(fp, []).append(i)
    out = [fp for fp, _, _ in prints]
    for fp, members in groups.items():
        if len(members) < 2:
            continue
        several_targets = len({prints[i][1] for i in members}) > 1
        seen: dict[str, int] = {}
        for i in sorted(members, key=lambda i: (prints[i][1], prints[i][2])):
            target = prints[i][1]
            n = seen.get(target, 0)
            seen[target] = n + 1
            parts = [fp]
            if several_targets:
                parts.append(target)
            if n:
                parts.append(f"#{n + 1}")
            out[i] = fp if len(parts) == 1 else hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]
    return out
