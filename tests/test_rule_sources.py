"""Every rule rests on a cited AWS fact, and the quotes from botocore's models are current.

A rule's ``sources`` name the page or model entry by title and quote its words. Quotes
from a service model (``shape`` set) are checked against the pinned botocore here, so a
changed AWS statement fails a test instead of silently leaving a rule wrong.
"""

from __future__ import annotations

import re

import botocore.session
import pytest

from auditor.cli import main
from auditor.rules import BUILTIN_RULES

ACTIVE = [r for r in BUILTIN_RULES if not r.retired]
MODEL_QUOTES = [
    pytest.param(source, id=f"{rule.id}-{source.shape}") for rule in ACTIVE for source in rule.sources if source.shape
]


def _plain(html: str | None) -> str:
    """Documentation HTML as text: tags dropped, spaces normalised (none before punctuation)."""
    text = " ".join(re.sub(r"<[^>]+>", " ", html or "").split())
    return re.sub(r" ([,.;:)])", r"\1", text)


def _texts(service: str, name: str) -> list[str]:
    """What a shape, member or operation says: its documentation, pattern and enum values."""
    model = botocore.session.get_session().get_service_model(service)
    head, _, member = name.partition(".")
    if head in model.operation_names:
        operation = model.operation_model(head)
        shape = operation.input_shape.members[member] if member else None
        return [_plain(shape.documentation if shape else operation.documentation)]
    shape = model.shape_for(head)
    if member:
        return [_plain(shape.members[member].documentation)]
    return [_plain(shape.documentation), shape.metadata.get("pattern", ""), *shape.metadata.get("enum", ())]


def test_every_rule_cites_its_sources():
    for rule in ACTIVE:
        assert rule.sources, rule.id
        assert all(s.title.strip() and s.quote.strip() for s in rule.sources), rule.id


@pytest.mark.parametrize("source", MODEL_QUOTES)
def test_model_quotes_are_in_the_pinned_botocore(source):
    texts = _texts(source.service, source.shape)
    quote = " ".join(source.quote.split())
    assert any(quote == text or quote in text for text in texts if text), (quote, texts)


def test_explain_shows_the_sources(capsys):
    assert main(["explain", "IBD015"]) == 0
    out = capsys.readouterr().out
    assert "Sources:\n  - EC2 Image Builder API Reference, LaunchTemplateConfiguration.setDefaultVersion" in out
    assert "If you don't set a value, Image Builder treats it as true." in out


def test_explain_a_retired_rule(capsys):
    assert main(["explain", "IBD014"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("IBD014 distribution-timeout (retired)\n")
    assert "IBD017 (api-constraints)" in out
