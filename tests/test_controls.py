"""Control mappings: one table (auditor/controls.toml), complete for the built-in rules, and
every view reads it."""

from __future__ import annotations

import json
import tomllib

import pytest

from auditor import controls
from auditor.cli import main
from auditor.controls import ControlTableError, parse_table
from auditor.model import Severity
from auditor.plugins import PluginHost
from auditor.rule import Rule

from conftest import REPO

TABLE = REPO / "auditor" / "controls.toml"


def _table() -> dict:
    return tomllib.loads(TABLE.read_text())


def test_every_loaded_builtin_rule_has_an_entry():
    host = PluginHost(load_entry_points=False)
    builtin = [rule.id for plugin, rule in host.rules() if plugin == "ib-audit.rules"]
    assert builtin, host.errors
    missing = controls.missing_entries(builtin)
    assert not missing, (
        f"auditor/controls.toml has no entry for {', '.join(missing)}: add [rules.ID] with the controls the rule "
        "evidences, or with only a reason saying why it evidences none"
    )


def test_entries_name_loaded_rules_or_retired_ones():
    builtin = {rule.id for _, rule in PluginHost(load_entry_points=False).rules()}
    orphans = [rid for rid, entry in controls.table().rules.items() if rid not in builtin and not entry.retired]
    assert orphans == []


def test_the_cli_view_is_the_table(capsys):
    assert main(["rules", "--framework", "nist-800-53-r5", "--format", "json"]) == 0
    view = json.loads(capsys.readouterr().out)
    doc = _table()
    catalogue = doc["frameworks"]["nist-800-53-r5"]["controls"]
    expected: dict[str, list[str]] = {}
    for rule_id, entry in doc["rules"].items():
        for control in entry.get("nist-800-53-r5", []):
            expected.setdefault(control, []).append(rule_id)
    assert {c["id"]: c["rules"] for c in view["controls"]} == {k: sorted(v) for k, v in expected.items()}
    assert [c["id"] for c in view["controls"]] == [c for c in catalogue if c in expected]  # catalogue order
    assert all(
        c["title"] == catalogue[c["id"]] and c["requirement"] == f"NIST.800-53.r5 {c['id']}" for c in view["controls"]
    )
    mapped = {r for rules in expected.values() for r in rules}
    assert view["rules_without_control"] == sorted(set(doc["rules"]) - mapped)


def test_frameworks_without_a_mapping_say_why(capsys):
    assert main(["rules", "--framework", "AWS-FSBP"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "AWS Foundational Security Best Practices v1.0.0 (aws-fsbp): "
        "https://docs.aws.amazon.com/securityhub/latest/userguide/fsbp-standard.html"
    )
    assert out[1] == " ".join(_table()["frameworks"]["aws-fsbp"]["note"].split())
    assert out[2].startswith("Rules that evidence no control of this framework: IBD001, IBD002")


def test_an_unknown_framework_is_a_usage_error(capsys):
    assert main(["rules", "--framework", "pci"]) == 2
    assert capsys.readouterr().err == (
        "ib-audit: error: unknown framework 'pci' (known: aws-fsbp, cis-aws, nist-800-53-r5)\n"
    )


def test_explain_names_the_controls(capsys):
    assert main(["explain", "IBD015"]) == 0
    assert "Controls it evidences: NIST.800-53.r5 CM-3 (Configuration Change Control)\n" in capsys.readouterr().out


FRAMEWORK = """
[frameworks.f]
title = "F"
url = "https://example.invalid"
requirement = "F {control}"
asff-type = "Software and Configuration Checks"
[frameworks.f.controls]
"X-1" = "One"
"""


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ('[rules.R1]\nf = ["X-2"]\nreason = "r"', "rule R1: f has no control X-2 in its catalogue"),
        ('[rules.R1]\ng = ["X-1"]\nreason = "r"', "rule R1: unknown framework 'g'"),
        ('[rules.R1]\nf = ["X-1"]', "rule R1: every entry needs a reason"),
    ],
)
def test_a_broken_table_is_rejected_naming_the_entry(rules, message):
    with pytest.raises(ControlTableError) as info:
        parse_table(FRAMEWORK + rules)
    assert str(info.value) == message


class PluginRule(Rule):
    """A rule from another package.

    Why:
      Test.

    Example:
      -

    Fix:
      -
    """

    id = "ACME100"
    slug = "acme"
    severity = Severity.LOW
    summary = "s"
    controls = {"nist-800-53-r5": ("SC-28", "AC-3", "NOT-A-CONTROL")}


def test_a_plugin_rule_declares_its_own_controls_and_the_table_wins_for_builtins():
    assert controls.requirements_for(PluginRule) == ["NIST.800-53.r5 AC-3", "NIST.800-53.r5 SC-28"]
    impostor = type("Impostor", (PluginRule,), {"id": "IBD009"})  # the table's IBD009 entry maps nothing
    assert controls.requirements_for(impostor) == []


def test_controls_doc_is_current():
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_controls_doc.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_readme_shows_the_framework_view_as_it_is(capsys):
    assert main(["rules", "--framework", "nist-800-53-r5"]) == 0
    view = capsys.readouterr().out
    assert f"$ ib-audit rules --framework nist-800-53-r5\n{view}```" in (REPO / "README.md").read_text()
