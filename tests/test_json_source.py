"""JSON shapes recognised by content, and positions mapped back to the file."""

from __future__ import annotations

import json

import pytest

from auditor.sources.jsonfile import JSONSource
from auditor.sources.jsonpos import loads_with_spans

CONFIG = {"name": "c", "distributions": [{"region": "us-east-1", "amiDistributionConfiguration": {}}]}


def _load(tmp_path, document, name="doc.json"):
    path = tmp_path / name
    text = json.dumps(document, indent=2)
    path.write_text(text)
    return JSONSource().load(path, text, name), text


@pytest.mark.parametrize(
    ("document", "prefix"),
    [
        (CONFIG, ""),
        ({"requestId": "r", "distributionConfiguration": CONFIG}, "/distributionConfiguration"),
        ({**CONFIG, "clientToken": "t"}, ""),
    ],
)
def test_single_document_shapes(tmp_path, document, prefix):
    loaded, text = _load(tmp_path, document)
    (target,) = loaded.targets
    assert target.id == "doc.json" and target.name == "c"
    assert "clientToken" not in target.config
    loc = target.locate("/distributions/0/amiDistributionConfiguration")
    line = text.splitlines().index(
        '      "amiDistributionConfiguration": {}' if not prefix else '        "amiDistributionConfiguration": {}'
    )
    assert loc.span.start_line == line + 1


def test_update_input_arn_is_renamed_and_still_located(tmp_path):
    arn = "arn:aws:imagebuilder:eu-west-1:111122223333:distribution-configuration/c"
    loaded, _ = _load(tmp_path, {"distributionConfigurationArn": arn, "distributions": []})
    (target,) = loaded.targets
    assert target.config["arn"] == arn
    assert target.origin.account == "111122223333" and target.origin.region == "eu-west-1"
    assert target.locate("/arn").span.start_line == 2


def test_list_of_documents_gives_one_target_each(tmp_path):
    loaded, _ = _load(tmp_path, [CONFIG, {"other": 1}, {"distributionConfiguration": {**CONFIG, "name": "d"}}])
    assert [(t.id, t.name) for t in loaded.targets] == [("doc.json#/0", "c"), ("doc.json#/2", "d")]


def test_bare_distribution_list(tmp_path):
    loaded, _ = _load(tmp_path, [{"region": "us-east-1"}, {"region": "eu-west-1"}])
    (target,) = loaded.targets
    assert target.locate("/distributions/1/region").span.start_line == 6


def test_sniff_rejects_unrelated_json(tmp_path):
    source = JSONSource()
    assert not source.sniff(tmp_path / "a.json", '{"compilerOptions": {}}')
    assert not source.sniff(tmp_path / "a.json", "name: x")
    assert source.sniff(tmp_path / "a.txt", '  {"distributions": []}')


@pytest.mark.parametrize(
    "text",
    [
        '{"a": {"b": [1, {"c": "\\u00e9"}]}, "key": true}',
        '{"' + "k" * 1500 + '": 1}',
        '{\n  "a": [\n    {"b": "x\\"y"},\n    [], {}\n  ],\n  "c": null\n}\n',
        '{"a": 1, "a": [2, 3]}',
        '[\t{"x":\t1}\t]',
    ],
)
def test_positions_agree_with_json_source_map(text):
    # json-source-map (a test dependency) is the reference: every value, mapped eagerly.
    from json_source_map import calculate

    value, spans = loads_with_spans(text)
    assert value == json.loads(text)
    reference = {
        pointer: (e.value_start.line + 1, e.value_start.column + 1, e.value_end.line + 1, e.value_end.column + 1)
        for pointer, e in calculate(text).items()
    }
    assert {p: (s.start_line, s.start_column, s.end_line, s.end_column) for p, s in spans.items()} == reference


@pytest.mark.parametrize(
    "text",
    [
        '{"a": {"b": [1, {"c": "\\u00e9"}]}, "key": true}',
        '{"a": {"b": 1}, "x": [1], "a": {"b": [2, {"c": 3}]}}',
        '[{"a": {"b": 1}, "a": {"b": 2}}, {"a": [1, 2]}, {"a": [3]}]',
        '{"d": [{"r": {"k": 1}, "r": {"k": 2}}], "d": [{"r": {"k": 3}}, {"r": 4}]}',
    ],
)
def test_each_pointer_looked_up_alone_agrees_with_json_source_map(text):
    # A lookup reads containers only as far as it needs; looked up first and alone, each
    # pointer must still land where json.loads took its value from (the last duplicate).
    from json_source_map import calculate

    for pointer, e in calculate(text).items():
        _, spans = loads_with_spans(text)
        span = spans[pointer]
        expected = (e.value_start.line + 1, e.value_start.column + 1, e.value_end.line + 1, e.value_end.column + 1)
        assert (span.start_line, span.start_column, span.end_line, span.end_column) == expected, pointer


def test_pointer_tokens_are_escaped():
    # json_source_map leaves "/" and "~" unescaped (so it cannot be the reference here).
    _, spans = loads_with_spans('{"k/e~y": {"x": 1}}')
    assert sorted(spans) == ["", "/k~1e~0y", "/k~1e~0y/x"]
