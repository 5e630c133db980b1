"""CI gate: baselines, JUnit, Markdown, merge, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sarif_checks import schema_errors

from auditor.cli import main

from conftest import EXAMPLES, REPO


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A copy of the examples to edit, with the working directory set to it."""
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLES, root / "examples")
    monkeypatch.chdir(root)
    return root


def _scan(capsys, *args):
    code = main(["scan", *args, "-f", "json=out.json", "-f", "text"])
    captured = capsys.readouterr()
    return code, json.loads(Path("out.json").read_text()), captured.out


def _active(report):
    return [(f["rule_id"], f["target"], f["path"]) for f in report["findings"] if f["suppressed"] is None]


def test_baseline_accepts_todays_findings_and_fails_only_on_new_ones(work, capsys):
    code, first, _ = _scan(capsys, "examples/", "--write-baseline", "baseline.json")
    assert code == 0  # writing the baseline was the job, and it is done
    assert first["summary"]["failed"] is True  # the report still says what the gate would do
    baseline = json.loads(Path("baseline.json").read_text())
    assert sorted(e["fingerprint"] for e in baseline["findings"]) == sorted(f["fingerprint"] for f in first["findings"])
    # Sorted by meaning (resource, semantic key, rule), so edits that move lines keep the order.
    keys = [(e["resource"], e["key"], e["rule_id"]) for e in baseline["findings"]]
    assert keys == sorted(keys)
    # Stable and reviewable: the same scan writes the same bytes.
    before = Path("baseline.json").read_bytes()
    _scan(capsys, "examples/", "--write-baseline", "baseline.json")
    assert Path("baseline.json").read_bytes() == before

    code, again, out = _scan(capsys, "examples/", "--baseline", "baseline.json")
    assert code == 0
    assert _active(again) == []
    assert {f["baseline_state"] for f in again["findings"]} == {"unchanged"}
    assert {f["suppressed"]["kind"] for f in again["findings"]} <= {"baseline", "tag", "inline"}

    # Lines move (a block inserted above): still the same findings.
    public = Path("examples/public-ami.json")
    public.write_text(
        public.read_text().replace('  "distributionConfiguration": {', '\n\n\n  "distributionConfiguration": {', 1)
    )
    # A new violation in a new file, identical to an old one elsewhere, is new (checkov#7647).
    shutil.copy(public, "examples/public-ami-copy.json")
    copy = json.loads(Path("examples/public-ami-copy.json").read_text())
    copy["distributionConfiguration"]["arn"] = copy["distributionConfiguration"]["arn"].replace("community", "copy")
    Path("examples/public-ami-copy.json").write_text(json.dumps(copy, indent=2))
    # And one old violation fixed.
    fast = Path("examples/windows-fast-launch.json")
    fast.write_text(fast.read_text().replace('"maxParallelLaunches": 2', '"maxParallelLaunches": 6'))

    code, after, out = _scan(capsys, "examples/", "--baseline", "baseline.json")
    assert code == 1
    assert _active(after) == [
        ("IBD009", "examples/public-ami-copy.json", "/distributions/0/amiDistributionConfiguration/name"),
        (
            "IBD002",
            "examples/public-ami-copy.json",
            "/distributions/0/amiDistributionConfiguration/launchPermission/userGroups/0",
        ),
    ]
    assert [f["baseline_state"] for f in after["findings"] if f["suppressed"] is None] == ["new", "new"]
    assert [(e["rule_id"], e["target"], e["path"]) for e in after["fixed"]] == [
        (
            "IBD003",
            "examples/windows-fast-launch.json",
            "/distributions/0/fastLaunchConfigurations/0/maxParallelLaunches",
        )
    ]
    assert "1 baseline finding(s) fixed:" in out


def test_sarif_carries_baseline_state(work, capsys):
    _scan(capsys, "examples/public-ami.json", "--write-baseline", "baseline.json")
    main(["scan", "examples/", "--baseline", "baseline.json", "-f", "sarif=out.sarif"])
    capsys.readouterr()
    log = json.loads(Path("out.sarif").read_text())
    states = {r["baselineState"] for r in log["runs"][0]["results"]}
    assert states == {"new", "unchanged"}
    unchanged = [r for r in log["runs"][0]["results"] if r["baselineState"] == "unchanged"]
    assert all(r["suppressions"][0]["kind"] == "external" for r in unchanged)
    assert schema_errors(log) == []


def test_bad_or_missing_baseline_stops_before_scanning(work, capsys):
    Path("baseline.json").write_text("{}")
    code = main(["scan", "examples/public-ami.json", "--baseline", "baseline.json", "-f", "json=out.json"])
    captured = capsys.readouterr()
    assert code == 2
    assert not Path("out.json").exists() and captured.out == ""
    assert captured.err == (
        "ib-audit: error: baseline.json: not an ib-audit baseline (version 1 or 2 with a findings list; "
        "write one with: ib-audit scan ... --write-baseline baseline.json)\n"
    )
    code = main(["scan", "examples/public-ami.json", "--baseline", "missing.json"])
    assert code == 2
    assert capsys.readouterr().err == (
        "ib-audit: error: missing.json: baseline file not found "
        "(write one with: ib-audit scan ... --write-baseline missing.json)\n"
    )


def test_junit_parses_with_a_real_consumer(work, capsys):
    from junitparser import Error, Failure, JUnitXml, Skipped

    Path("broken.json").write_text('{"distributions": [')
    main(["scan", "examples/", "broken.json", "-f", "junit=out.xml"])
    capsys.readouterr()
    xml = JUnitXml.fromfile("out.xml")
    cases = [(suite.name, case.name, case) for suite in xml for case in suite]
    audited = [t for t in _scan(capsys, "examples/", "broken.json")[1]["targets"] if t["status"] == "audited"]
    assert len(cases) == len(audited) * 16 + 1
    failed = {(s, c.split()[0]) for s, c, case in cases if any(isinstance(r, Failure) for r in case.result)}
    _, report, _ = _scan(capsys, "examples/", "broken.json")
    expected = {(f["target"], f["rule_id"]) for f in report["findings"] if f["suppressed"] is None}
    assert failed == expected
    errors = [(s, c) for s, c, case in cases if any(isinstance(r, Error) for r in case.result)]
    assert errors == [("broken.json", "load configuration")]
    skipped = [(s, c) for s, c, case in cases if any(isinstance(r, Skipped) for r in case.result)]
    assert sorted(skipped) == [
        ("examples/cloudformation/golden-pipeline.yaml#LegacyDistribution", "IBD009 ami-name-not-unique"),
        ("examples/mixed-estate.json#/1", "IBD001 ami-kms-key-required"),
    ]
    public = next(case for s, c, case in cases if s == "examples/public-ami.json" and c.startswith("IBD002"))
    assert "examples/public-ami.json:13:47: IBD002 [critical]" in public.result[0].text


def test_markdown_summary_is_compact_and_safe(work, capsys):
    main(["scan", "examples/", "-f", "markdown=summary.md", "-f", "json=out.json"])
    capsys.readouterr()
    text = Path("summary.md").read_text()
    summary = json.loads(Path("out.json").read_text())["summary"]
    assert text.startswith("## ib-audit\n\n❌ **Failed**: findings at or above `low`\n")
    counts = " | ".join(str(summary["findings"][s]) for s in ("critical", "high", "medium", "low", "info"))
    assert f"| {counts} | {summary['suppressed']} | {summary['errors']} |" in text
    assert (
        "| critical | IBD002 ami-public-launch-permission | community-image | examples/public-ami.json:13:47 |" in text
    )


def test_markdown_stays_under_githubs_limit_at_scale(tmp_path, monkeypatch, capsys):
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    from bench_scan import generate

    data = tmp_path / "many"
    data.mkdir()
    generate(data, 3000, 10)
    monkeypatch.chdir(tmp_path)
    main(["scan", str(data), "-f", "markdown=summary.md"])
    capsys.readouterr()
    text = Path("summary.md").read_text()
    assert len(text.encode()) < 100_000
    assert "…and " in text and "more; see the SARIF, HTML or JSON report" in text


def test_markdown_cells_cannot_break_the_table():
    from auditor.reports.markdown import cell

    assert cell("a|b\n<script>`x`") == "a\\|b &lt;script&gt;\\`x\\`"


def test_merged_shards_equal_one_scan(work, capsys):
    _scan(capsys, "examples/")
    full = json.loads(Path("out.json").read_text())
    files = sorted({t["origin"]["file"] for t in full["targets"]})
    for i, part in enumerate((files[:4], files[4:])):
        main(["scan", *part, "-f", f"json=shard{i}.json"])
    capsys.readouterr()
    code = main(["merge", "shard0.json", "shard1.json", "-f", "json=merged.json", "-f", "sarif=merged.sarif"])
    capsys.readouterr()
    merged = json.loads(Path("merged.json").read_text())
    assert code == 1
    key = lambda f: (f["rule_id"], f["target"], f["path"], f["fingerprint"], f["location"].get("start_line"))  # noqa: E731
    assert sorted(map(key, merged["findings"])) == sorted(map(key, full["findings"]))
    assert sorted(t["id"] for t in merged["targets"]) == sorted(t["id"] for t in full["targets"])
    assert schema_errors(json.loads(Path("merged.sarif").read_text())) == []
    # A shard given twice is detected, never counted twice.
    code = main(["merge", "shard0.json", "shard1.json", "shard0.json", "-f", "json=twice.json"])
    capsys.readouterr()
    twice = json.loads(Path("twice.json").read_text())
    assert code == 2
    assert len(twice["findings"]) == len(merged["findings"])
    assert twice["errors"][0]["message"].startswith("target examples/")
    assert "was already merged from shard0.json" in twice["errors"][0]["message"]


def test_exit_zero_and_fail_on_never(work, capsys):
    assert _scan(capsys, "examples/", "--exit-zero")[0] == 0
    assert _scan(capsys, "examples/", "--fail-on", "never")[0] == 0
    Path("bad.json").write_text("{")
    assert _scan(capsys, "bad.json", "examples/", "--exit-zero")[0] == 2  # errors still exit 2
