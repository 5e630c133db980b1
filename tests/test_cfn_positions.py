"""Where a CloudFormation value sits in its template: the map from file pointer to span.

Positions are kept per member and found by walking the pointer on demand, so these
tests ask for pointers through every kind of level (mapping, sequence, short-form tag,
long-form intrinsic, escaped key) and compare with lines and columns read off the text.
"""

from __future__ import annotations

import gc
import textwrap
from pathlib import Path

import pytest

from auditor.model import Span
from auditor.sources import SourceError
from auditor.sources.cloudformation import CloudFormationSource

TEMPLATE = textwrap.dedent(
    """\
    Resources:
      Golden:
        Type: AWS::ImageBuilder::DistributionConfiguration
        Properties:
          Name: !Sub "${AWS::StackName}-golden"
          Description: first
          Description: second
          Distributions:
            - Region: us-east-1
              AmiDistributionConfiguration:
                AmiTags: {"team/owner": platform, "a~b": x}
                KmsKeyId:
                  Fn::If: [Encrypted, arn:aws:kms:us-east-1:111122223333:key/k, !Ref "AWS::NoValue"]
    """
)
BASE = "/Resources/Golden/Properties"


def spans_of(text: str, name: str = "stack.yaml"):
    result = CloudFormationSource().load(Path(name), text, name)
    (target,) = result.targets
    return target.source_map.spans


def at(text: str, needle: str, nth: int = 1) -> tuple[int, int]:
    """1-based line and column of the nth occurrence of ``needle``."""
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def region(text: str, start: str, end: str, nth: int = 1) -> Span:
    """From the start of ``start`` to just after ``end`` (its first occurrence after ``start``)."""
    line, column = at(text, start, nth)
    offset = text.index(end, sum(len(row) + 1 for row in text.splitlines()[: line - 1]) + column - 1)
    end_line, end_column = at(text[: offset + len(end)] + "\0", "\0")
    return Span(line, column, end_line, end_column)


def test_a_member_spans_from_its_key_to_the_end_of_its_value():
    spans = spans_of(TEMPLATE)
    assert spans[f"{BASE}/Distributions/0/Region"] == region(TEMPLATE, "Region:", "us-east-1")
    item = spans[f"{BASE}/Distributions/0"]  # a list entry starts at its value (after "- ")
    assert (item.start_line, item.start_column) == at(TEMPLATE, "Region:")


def test_a_short_form_tag_is_a_level_named_by_its_long_form():
    spans = spans_of(TEMPLATE)
    assert spans[f"{BASE}/Name"] == region(TEMPLATE, "Name:", '-golden"')
    assert spans[f"{BASE}/Name/Fn::Sub"] == region(TEMPLATE, "!Sub", '-golden"')
    assert spans.get(f"{BASE}/Name/Sub") is None
    not_encrypted = f"{BASE}/Distributions/0/AmiDistributionConfiguration/KmsKeyId/Fn::If/2"
    assert spans[not_encrypted] == region(TEMPLATE, "!Ref", '"AWS::NoValue"')
    assert spans[f"{not_encrypted}/Ref"] == region(TEMPLATE, "!Ref", '"AWS::NoValue"')


def test_long_form_intrinsics_sequences_and_escaped_keys():
    spans = spans_of(TEMPLATE)
    ami = f"{BASE}/Distributions/0/AmiDistributionConfiguration"
    assert spans[f"{ami}/KmsKeyId/Fn::If"].start_line == at(TEMPLATE, "Fn::If:")[0]
    assert spans[f"{ami}/KmsKeyId/Fn::If/0"] == region(TEMPLATE, "Encrypted", "Encrypted")
    assert spans[f"{ami}/AmiTags/team~1owner"] == region(TEMPLATE, '"team/owner"', "platform")
    assert spans[f"{ami}/AmiTags/a~0b"] == region(TEMPLATE, '"a~b"', "x")


def test_a_repeated_key_points_at_the_last_one_as_its_value_does():
    spans = spans_of(TEMPLATE)
    assert spans[f"{BASE}/Description"] == region(TEMPLATE, "Description:", "second", nth=2)


def test_pointers_the_template_does_not_have_are_missing():
    spans = spans_of(TEMPLATE)
    for pointer in (
        f"{BASE}/Nope",
        f"{BASE}/Distributions/1",
        f"{BASE}/Distributions/00",
        f"{BASE}/Distributions/-1",
        f"{BASE}/Distributions/x",
        f"{BASE}/Distributions/0/Region/more",
    ):
        assert spans.get(pointer) is None, pointer
        with pytest.raises(KeyError):
            spans[pointer]


def test_every_pointer_is_listed_once_and_each_has_a_span():
    spans = spans_of(TEMPLATE)
    pointers = list(spans)
    assert len(pointers) == len(set(pointers)) == len(spans)
    assert "" in pointers and f"{BASE}/Name/Fn::Sub" in pointers and f"{BASE}/Distributions/0/Region" in pointers
    assert all(isinstance(spans[pointer], Span) for pointer in pointers)


def test_a_json_template_has_the_same_positions():
    text = textwrap.dedent(
        """\
        {
          "Resources": {
            "Golden": {
              "Type": "AWS::ImageBuilder::DistributionConfiguration",
              "Properties": {"Name": {"Fn::Sub": "x"}, "Distributions": [{"Region": "us-east-1"}]}
            }
          }
        }
        """
    )
    spans = spans_of(text, "stack.json")
    assert spans[f"{BASE}/Name/Fn::Sub"] == region(text, '"Fn::Sub"', '"x"')
    assert spans[f"{BASE}/Distributions/0/Region"] == region(text, '"Region"', '"us-east-1"')


@pytest.mark.parametrize("collecting", [True, False])
def test_loading_leaves_the_cycle_collector_as_it_found_it(collecting):
    was = gc.isenabled()
    try:
        gc.enable() if collecting else gc.disable()
        spans_of(TEMPLATE)
        assert gc.isenabled() is collecting
        with pytest.raises(SourceError):
            CloudFormationSource().load(Path("bad.yaml"), "Resources: [", "bad.yaml")
        assert gc.isenabled() is collecting
    finally:
        gc.enable() if was else gc.disable()
