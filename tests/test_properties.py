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
