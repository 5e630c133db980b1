"""Generated documentation stays in step with the rules."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_rules_doc_is_current():
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_rules_doc.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_readme_lists_every_rule():
    from auditor.rules import BUILTIN_RULES

    readme = (REPO / "README.md").read_text()
    for rule in BUILTIN_RULES:
        assert f"| {rule.id} | `{rule.slug}` |" in readme, rule.id


def test_readme_policy_grants_exactly_the_context_actions():
    """The README's read-only policy grows by what the fact providers call, nothing more."""
    import json
    import re

    from auditor.plugins import PluginHost

    readme = (REPO / "README.md").read_text()
    block = re.search(r'```json\n(\{\n  "Version": "2012-10-17",.*?)```', readme, re.DOTALL).group(1)
    statement = next(s for s in json.loads(block)["Statement"] if s["Sid"] == "IbAuditAccountContext")
    actions = {a for p in PluginHost(load_entry_points=False).fact_providers().values() for a in p.actions}
    assert statement["Action"] == sorted(actions)
