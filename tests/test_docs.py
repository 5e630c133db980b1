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
