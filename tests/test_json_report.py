"""The JSON report is a contract: schema, ordering, fingerprints, target references."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from conftest import EXAMPLES

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "report-v1.schema.json").read_text())


def test_examples_report_matches_the_schema(scan):
    run = scan("examples/", "does-not-exist.json")
    jsonschema.validate(run.report, SCHEMA)
    ids = {t["id"] for t in run.report["targets"]}
    assert all(f["target"] in ids for f in run.report["findings"])
    summary = run.report["summary"]
    # 10 JSON, 3 CloudFormation resources, 4 Terraform resources (3 .tf, 1 .tf.json), 1 missing
    assert summary["inputs"] == len(run.report["targets"]) == 18
    assert summary["audited"] == 17 and summary["errors"] == 1


def test_findings_are_ordered_by_file_then_line_then_column_then_rule(scan):
    run = scan("examples/")
    keys = [
        (f["location"]["file"], f["location"]["start_line"], f["location"]["start_column"], f["rule_id"])
        for f in run.report["findings"]
    ]
    assert keys == sorted(keys)
    assert len({k[0] for k in keys}) > 5  # several files, so the order is really tested


def test_fingerprints_survive_line_moves_and_reformatting(scan, tmp_path):
    original = json.loads((EXAMPLES / "public-ami.json").read_text())
    a = tmp_path / "a" / "public-ami.json"
    a.parent.mkdir()
    a.write_text(json.dumps(original, indent=2))
    first = scan(str(a))
    a.write_text("\n\n\n" + json.dumps(original, indent=8))
    second = scan(str(a))
    assert [f["start_line"] for f in (x["location"] for x in first.report["findings"])] != [
        f["start_line"] for f in (x["location"] for x in second.report["findings"])
    ]
    assert [f["fingerprint"] for f in first.report["findings"]] == [f["fingerprint"] for f in second.report["findings"]]
    assert len({f["fingerprint"] for f in first.report["findings"]}) == len(first.report["findings"])


def test_same_finding_in_another_resource_has_another_fingerprint(scan, tmp_path):
    doc = json.loads((EXAMPLES / "public-ami.json").read_text())
    twin = json.loads(json.dumps(doc))
    twin["distributionConfiguration"]["arn"] = doc["distributionConfiguration"]["arn"].replace("community", "other")
    (tmp_path / "both.json").write_text(json.dumps([doc, twin], indent=2))
    run = scan(str(tmp_path / "both.json"), "--select", "IBD002")
    prints = [f["fingerprint"] for f in run.report["findings"]]
    assert len(prints) == 2 and prints[0] != prints[1]
