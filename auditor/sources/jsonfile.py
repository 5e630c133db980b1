"""JSON files: saved API responses, bare configurations, CLI input documents, lists.

Recognised shapes (each may also be an element of a top-level list):

- ``get-distribution-configuration`` output: ``{"distributionConfiguration": {...}}``
- a bare configuration, or a ``create``/``update-distribution-configuration`` input
  document (``--cli-input-json``): an object with ``distributions``
- the ``--distributions`` argument of the CLI: a list of Distribution objects, audited
  as one configuration made of just those distributions
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from auditor._api_model import REQUEST_ONLY_MEMBERS
from auditor.hookspecs import hookimpl
from auditor.model import Origin, SourceMap, Span, Target, join_pointer
from auditor.sources import NOT_JSON, LoadResult, checked_config, json_document, looks_like_json
from auditor.sources.jsonpos import loads_with_spans

ARN_RE = re.compile(
    r"^arn:[^:]+:imagebuilder:(?P<region>[^:]*):(?P<account>\d{12}):distribution-configuration/(?P<name>.+)$"
)
_MARKERS = ('"distributions"', '"distributionConfiguration"', '"region"')


class JSONSource:
    name = "json"
    priority = 100  # after the CloudFormation source, which also reads JSON

    def sniff(self, path: Path, text: str) -> bool:
        # A JSON file that never names these members cannot be a configuration;
        # checking before parsing keeps directory walks of unrelated JSON cheap.
        if not looks_like_json(text) or not any(marker in text for marker in _MARKERS):
            return False
        document = json_document(text)
        if document is NOT_JSON:
            return True  # malformed: load reports the line and column
        return next(_configurations(document), None) is not None

    def load(self, path: Path, text: str, display: str) -> LoadResult:
        document, spans = loads_with_spans(text)  # JSONSyntaxError is a SourceError
        result = LoadResult()
        for element, pointer, config, renames, response in _configurations(document):
            target_id = f"{display}#{element}" if element else display
            _add_target(result, display, target_id, spans, pointer, config, renames, response)
        return result


def _configurations(document: Any):
    """Yield ``(list element, file pointer, canonical config, renames, is a response)`` per configuration."""
    if isinstance(document, list):
        if document and all(_is_distribution(d) for d in document):
            yield "", "", {"distributions": document}, {"/distributions": ""}, False
            return
        for index, item in enumerate(document):
            element = join_pointer("", index)
            found = _one(item, element)
            if found is not None:
                yield (element, *found)
        return
    found = _one(document, "")
    if found is not None:
        yield ("", *found)


def _is_distribution(value: Any) -> bool:
    return isinstance(value, dict) and "region" in value and "distributions" not in value


def _one(value: Any, pointer: str):
    if not isinstance(value, dict):
        return None
    inner = value.get("distributionConfiguration")
    if isinstance(inner, dict):
        return join_pointer(pointer, "distributionConfiguration"), inner, {}, True
    if "distributions" in value:
        config = dict(value)
        renames = {}
        # Only the API sets dateCreated: a bare object carrying it was saved from a
        # response (e.g. jq .distributionConfiguration), not written as a request.
        response = "dateCreated" in config and not any(m in config for m in REQUEST_ONLY_MEMBERS)
        # Input documents name the ARN differently and carry an idempotency token.
        if "distributionConfigurationArn" in config and "arn" not in config:
            config["arn"] = config.pop("distributionConfigurationArn")
            renames["/arn"] = join_pointer(pointer, "distributionConfigurationArn")
        config.pop("clientToken", None)
        return pointer, config, renames, response
    return None


def _add_target(
    result: LoadResult,
    display: str,
    target_id: str,
    spans: Mapping[str, Span],
    pointer: str,
    config: dict[str, Any],
    renames: dict[str, str],
    response: bool = False,
) -> None:
    source_map = SourceMap(file=display, spans=spans, prefix=pointer, renames=renames)
    errors_before = len(result.errors)
    checked = checked_config(config, source_map, display, result)
    arn = checked.get("arn") if isinstance(checked.get("arn"), str) else None
    match = ARN_RE.match(arn) if arn else None
    name = checked.get("name")
    if not isinstance(name, str):
        name = match.group("name") if match else Path(display).stem
    origin = Origin(
        kind="json",
        file=display,
        arn=arn,
        region=match.group("region") if match else None,
        account=match.group("account") if match else None,
        response=response,
    )
    literal = len(result.errors) == errors_before  # no value had to be replaced by a marker
    result.targets.append(
        Target(id=target_id, name=name, origin=origin, config=checked, source_map=source_map, literal=literal)
    )


@hookimpl
def auditor_add_file_sources() -> list[JSONSource]:
    return [JSONSource()]
