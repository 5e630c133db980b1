"""Terraform values read off their bytes must equal what the syntax tree says they are.

The Terraform reader takes a short cut for plain literals (``tf_eval.plain_value``): a
quoted string with nothing to unescape or interpolate, an integer, a keyword, a tuple or
object of such strings. These tests hold the short cut to the tree's reading on random
expressions, hostile ones included, so a value can never mean one thing to the tree and
another to the short cut.
"""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.model import Unresolved
from auditor.sources import tf_eval
from auditor.sources.tf_eval import Evaluator, parse_hcl

# Characters that matter to HCL strings: quotes, escapes, interpolation and directive
# starts, spaces, non-ASCII, and letters.
TEXT = st.text(alphabet=st.sampled_from(list('ab Z09-_.:/*"\\$%{}é€\t')), max_size=12)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


STRINGS = TEXT.map(_quoted)
INTEGERS = st.integers(min_value=0, max_value=10**30).map(str)
KEYWORDS = st.sampled_from(["true", "false", "null"])
SCALARS = st.one_of(STRINGS, INTEGERS, KEYWORDS)
KEYS = st.one_of(
    STRINGS,
    st.sampled_from(["a", "name", "b_c", "a-b", "true", "null", "for", "if", "in", "x1"]),
)
SPACE = st.sampled_from(["", " ", "  ", "\n  "])


@st.composite
def expressions(draw) -> str:
    kind = draw(st.sampled_from(["scalar", "tuple", "object"]))
    if kind == "scalar":
        return draw(SCALARS)
    gap = draw(SPACE)
    if kind == "tuple":
        items = draw(st.lists(st.one_of(STRINGS, SCALARS), max_size=4))
        trailing = "," if items and draw(st.booleans()) else ""
        return "[" + gap + ("," + gap).join(items) + trailing + gap + "]"
    pairs = draw(st.lists(st.tuples(KEYS, st.one_of(STRINGS, SCALARS), st.sampled_from(["=", ":"])), max_size=4))
    separator = draw(st.sampled_from([",", "\n"]))
    body = separator.join(f"{gap}{key} {sign} {value}" for key, value, sign in pairs)
    return "{" + body + ("\n" if pairs else "") + "}"


def _both_readings(expression: str) -> tuple[object, object]:
    """(short cut allowed, tree only) readings of ``x = <expression>``."""
    body, pos = parse_hcl(f"x = {expression}\n")
    attribute = next(c for c in body.named_children if c.type == "attribute")
    node = next(c for c in attribute.named_children if c.type == "expression")
    fast = Evaluator(pos).value(node)
    never = mock.Mock(return_value=tf_eval.NOT_PLAIN)
    with mock.patch.object(tf_eval, "plain_value", never), mock.patch.object(tf_eval, "plain_literal", never):
        tree = Evaluator(pos).value(node)
    return fast, tree


def _comparable(value: object) -> object:
    return repr(value)  # Unresolved values compare by what they say


@settings(max_examples=400, deadline=None)
@given(expression=expressions())
def test_the_short_cut_reads_every_expression_as_the_tree_does(expression):
    try:
        fast, tree = _both_readings(expression)
    except tf_eval.SourceError:
        return  # not valid HCL: both readers refuse it before any value is read
    assert _comparable(fast) == _comparable(tree), expression


@pytest.mark.parametrize(
    "expression",
    [
        "9" * 5000,  # more digits than Python converts: the tree path bounds it
        "123456789012345678901234567890",
        '"${var.x}"',
        '"%{ if true }a%{ endif }"',
        '"a\\"b"',
        '{ a-b = "x" }',
        '{ if = "x" }',
        '["a", var.x]',
    ],
)
def test_what_the_short_cut_leaves_to_the_tree(expression):
    fast, tree = _both_readings(expression)
    assert _comparable(fast) == _comparable(tree)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('" "', " "),
        ('" golden ami "', " golden ami "),
        ('"a  ${"x"} b "', "a  x b "),
        ('" ${"x"}"', " x"),
        ('["a ", " b"]', ["a ", " b"]),
    ],
)
def test_spaces_inside_strings_are_kept(expression, expected):
    # The HCL grammar leaves a string's outer spaces out of its literal node; Terraform
    # keeps them, and so must we, on both readings (an AMI name ending in a space breaks
    # the API's pattern).
    fast, tree = _both_readings(expression)
    assert fast == expected
    assert tree == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # Expected values as Terraform reads them (HCL's heredoc specification suite):
        # every line with its newline; <<- removes the least indentation of non-blank lines.
        ("<<EOT\nFoo\nBar\nEOT", "Foo\nBar\n"),
        ("<<EOT\n    Foo\n      Bar\n  EOT", "    Foo\n      Bar\n"),
        ("<<-EOT\n    Foo\n      Bar\n    Baz\n    EOT", "Foo\n  Bar\nBaz\n"),
        ("<<-EOT\n      Foo\n    Bar\n      Baz\n  EOT", "  Foo\nBar\n  Baz\n"),
        ("<<-EOT\n    Foo\n\n    Bar\n  EOT", "Foo\n\nBar\n"),  # a blank line does not count
        ("<<-EOT\n\tFoo\n\t Bar\n\t Baz\nEOT", "Foo\n Bar\n Baz\n"),
        ('<<EOT\ngolden  ${"prod"} {{ imagebuilder:buildDate }}\nEOT', "golden  prod {{ imagebuilder:buildDate }}\n"),
        ('<<-EOT\n    a  ${"x"}  b \n      ${"y"} c\n  EOT', "a  x  b \n  y c\n"),
        ('<<-EOT\n    ${"x"}\n      y\n  EOT', "x\n  y\n"),  # an interpolation first: that line's indent
        ("<<EOT\nuse $${var.x} and %%{ if }\nEOT", "use ${var.x} and %{ if }\n"),
        ("<<EOT\nEOT", ""),
    ],
)
def test_heredocs_read_as_terraform_reads_them(expression, expected):
    # tree-sitter-hcl leaves indentation, newlines and the spaces around interpolations
    # out of a heredoc's literal nodes: "golden  ${var.env} {{...}}" read "goldenprod{{...}}".
    fast, tree = _both_readings(expression + "\n")
    assert fast == expected
    assert tree == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [('"$${var.x}"', "${var.x}"), ('"a %%{ if } b"', "a %{ if } b"), ('"$${x} ${"y"}"', "${x} y")],
)
def test_escaped_template_markers_in_quoted_strings(expression, expected):
    fast, tree = _both_readings(expression)
    assert fast == expected
    assert tree == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # As Terraform's functions return them; anything else stays unresolved (its text).
        ('merge({a = "1"}, {b = "2", a = "3"})', {"a": "3", "b": "2"}),
        ('merge({a = "1"}, null)', {"a": "1"}),
        ('concat(["a"], ["b", "c"])', ["a", "b", "c"]),
        ('lookup({a = "x"}, "a")', "x"),
        ('lookup({a = "x"}, "b", "d")', "d"),
        ('tomap({a = "x"})', {"a": "x"}),
        ('toset(["b", "a", "b"])', ["a", "b"]),
        ('tolist(["b", "a"])', ["b", "a"]),
        ('lookup({a = "x"}, "b")', 'lookup({a = "x"}, "b")'),  # Terraform fails: no default
        ('merge(["x"]...)', 'merge(["x"]...)'),  # an expanded argument
        ('concat(["a"], "b")', 'concat(["a"], "b")'),  # a wrong type: Terraform rejects it
        ('merge(var.x, {a = "1"})', 'merge(var.x, {a = "1"})'),  # an argument that does not resolve
        ('upper("a")', 'upper("a")'),  # not one of the functions read
    ],
)
def test_the_functions_configurations_build_values_with(expression, expected):
    _fast, tree = _both_readings(expression)
    if expected == expression:
        assert isinstance(tree, Unresolved) and str(tree) == expression
    else:
        assert not isinstance(tree, Unresolved) and tree == expected
