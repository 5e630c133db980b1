"""Checks an ASFF finding against botocore's own model of Security Hub's BatchImportFindings.

botocore's ParamValidator is what boto3 runs before sending a request: required members,
types, enums' shapes, nested structures. It does not check documented maximums (lengths,
item counts), so those are read from the same model's documentation ("Maximum length of
256", "Maximum number of 32 items") and checked here too.
"""

from __future__ import annotations

import re
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

MAX_LENGTH_RE = re.compile(r"Maximum (?:length )?of (\d+)(?: length)?")
MAX_ITEMS_RE = re.compile(r"Maximum number of (\d+) items")
_MODEL = botocore.session.get_session().get_service_model("securityhub")


def operation_input(operation: str):
    return _MODEL.operation_model(operation).input_shape


def validate_request(operation: str, params: dict[str, Any]) -> list[str]:
    """Every problem botocore's validator and the documented maximums find, as text."""
    shape = operation_input(operation)
    report = ParamValidator().validate(params, shape)
    problems = [report.generate_report()] if report.has_errors() else []
    _check_maximums(params, shape, operation, problems)
    return problems


def validate_findings(findings: list[dict[str, Any]]) -> list[str]:
    """Problems of a BatchImportFindings request made of these findings (in slices of 100)."""
    problems = []
    for start in range(0, len(findings), 100):
        problems += validate_request("BatchImportFindings", {"Findings": findings[start : start + 100]})
    return problems


def _limit(shape, pattern: re.Pattern) -> int | None:
    match = pattern.search(re.sub(r"<[^>]+>", " ", shape.documentation or ""))
    return int(match.group(1)) if match else None


def _check_maximums(value: Any, shape, where: str, problems: list[str]) -> None:
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                _check_maximums(value[name], member, f"{where}.{name}", problems)
    elif shape.type_name == "list" and isinstance(value, list):
        most = _limit(shape, MAX_ITEMS_RE)
        if most is not None and len(value) > most:
            problems.append(f"{where}: {len(value)} items, at most {most}")
        for i, item in enumerate(value):
            _check_maximums(item, shape.member, f"{where}[{i}]", problems)
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            _check_maximums(item, shape.value, f"{where}[{key!r}]", problems)
    elif shape.type_name == "string" and isinstance(value, str):
        most = _limit(shape, MAX_LENGTH_RE)
        if most is not None and len(value) > most:
            problems.append(f"{where}: {len(value)} characters, at most {most}")
