"""Property-based: random JSON and mutated examples never produce a traceback.

Every input ends as an audited target (with or without findings) or a clear error.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.config import Settings
from auditor.engine import audit, configure_rules
from auditor.plugins import PluginHost
from auditor.sources import load_paths

from conftest import EXAMPLES

HOST = PluginHost(load_entry_points=False)
SETTINGS = Settings()
SPECS = configure_rules(HOST, SETTINGS)
SOURCES = HOST.file_sources()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
EXAMPLE_DOCS = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]


def _check(tmp: Path, text: str) -> None:
    path = tmp / "input.json"
    path.write_text(text, encoding="utf-8")
    loaded = load_paths([str(path)], SOURCES, 20_000_000)
    result = audit(HOST, SPECS, loaded.targets, loaded.errors, SETTINGS)
    assert result.targets, "every named input ends in the result"
    for target in result.targets:
        assert target.status in ("audited", "error")
    tool_errors = [e for e in result.errors if "raised" in e.message or "failed:" in e.message]
    assert tool_errors == []


def _mutate(value, rng: random.Random, replacement):
    """Replace one random node of a JSON document."""
    nodes = []

    def walk(v, parent, key):
        nodes.append((parent, key))
        if isinstance(v, dict):
            for k, item in v.items():
                walk(item, v, k)
        elif isinstance(v, list):
            for i, item in enumerate(v):
                walk(item, v, i)

    walk(value, None, None)
    parent, key = rng.choice(nodes)
    if parent is None:
        return replacement
    parent[key] = replacement
    return value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values)
def test_random_json_values(tmp_path, value):
    _check(tmp_path, json.dumps({"distributions": value}))
    _check(tmp_path, json.dumps(value))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, len(EXAMPLE_DOCS) - 1), seed=st.integers(0, 2**32), replacement=json_values)
def test_mutated_examples(tmp_path, index, seed, replacement):
    doc = json.loads(json.dumps(EXAMPLE_DOCS[index]))
    _check(tmp_path, json.dumps(_mutate(doc, random.Random(seed), replacement), indent=2))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, len(EXAMPLE_DOCS) - 1), cut=st.integers(0, 2000), junk=st.text(max_size=5))
def test_truncated_and_corrupted_text(tmp_path, index, cut, junk):
    text = json.dumps(EXAMPLE_DOCS[index], indent=2)
    _check(tmp_path, text[:cut] + junk + text[cut + len(junk) :])


IAC_TEXTS = []


def _iac_texts():
    if not IAC_TEXTS:
        from iac_writer import to_cloudformation, to_terraform

        for doc in EXAMPLE_DOCS:
            for item in doc if isinstance(doc, list) else [doc]:
                config = item.get("distributionConfiguration", item)
                IAC_TEXTS.append(("template.yaml", to_cloudformation(config)[0]))
                IAC_TEXTS.append(("main.tf", to_terraform(config)[0]))
    return IAC_TEXTS


def _check_named(tmp: Path, name: str, text: str) -> None:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    loaded = load_paths([str(path)], SOURCES, 20_000_000)
    result = audit(HOST, SPECS, loaded.targets, loaded.errors, SETTINGS)
    assert result.targets
    assert [e for e in result.errors if "raised" in e.message or "failed:" in e.message] == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, 100), cut=st.integers(0, 3000), junk=st.text(max_size=6))
def test_corrupted_cloudformation_and_terraform(tmp_path, index, cut, junk):
    name, text = _iac_texts()[index % len(_iac_texts())]
    _check_named(tmp_path, name, text[:cut] + junk + text[cut + len(junk) :])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, len(EXAMPLE_DOCS) - 1), seed=st.integers(0, 2**32), replacement=json_values)
def test_mutated_configurations_as_cloudformation_and_terraform(tmp_path, index, seed, replacement):
    from iac_writer import to_cloudformation, to_terraform

    doc = json.loads(json.dumps(EXAMPLE_DOCS[index]))
    doc = doc[0] if isinstance(doc, list) else doc
    config = _mutate(doc.get("distributionConfiguration", doc), random.Random(seed), replacement)
    if not isinstance(config, dict):
        config = {"distributions": config}
    _check_named(tmp_path, "template.yaml", to_cloudformation(config)[0])
    _check_named(tmp_path, "main.tf", to_terraform(config)[0])
