"""SARIF report: schema, multitool (SARIF + GitHub rules), content, limits, snapshot."""

from __future__ import annotations

import json
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sarif_checks import multitool_problems, schema_errors

from auditor.cli import main

from conftest import EXAMPLES, REPO

SNAPSHOT = REPO / "tests" / "snapshots" / "examples.sarif.json"


@pytest.fixture
def sarif(tmp_path, monkeypatch, capsys):
    def run(*args, cwd=REPO):
        monkeypatch.chdir(cwd)
        out = tmp_path / "out.sarif"
        code = main(["scan", *args, "-f", f"sarif={out}"])
        capsys.readouterr()
        return code, json.loads(out.read_text()), out

    return run


def _results(log):
    return log["runs"][0]["results"]


def test_examples_pass_the_official_schema_and_the_multitool(sarif, tmp_path):
    code, log, path = sarif("examples/", "--config", "examples/ib-audit.toml", "--sarif-category", "repo")
    assert code == 1
    assert schema_errors(log) == []
    assert multitool_problems(path, tmp_path) == []


def test_errors_become_notifications_and_still_validate(sarif, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"distributions": [}')
    code, log, path = sarif(str(bad), str(EXAMPLES / "public-ami.json"))
    assert code == 2
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error"
    assert note["message"]["text"] == f"{bad}: line 1, column 20: invalid JSON: Expecting value."
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == bad.as_uri()
    assert schema_errors(log) == []
    assert multitool_problems(path, tmp_path) == []


def test_result_content(sarif):
    _, log, _ = sarif("examples/public-ami.json")
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [f"IBD{n:03}" for n in range(1, 18) if n != 14]  # IBD014 is retired
    public = next(r for r in _results(log) if r["ruleId"] == "IBD002")
    assert rules[public["ruleIndex"]]["id"] == "IBD002"
    assert public["level"] == "error"
    assert public["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "examples/public-ami.json", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 13, "startColumn": 47, "endLine": 13, "endColumn": 52},
    }
    assert public["locations"][0]["logicalLocations"][0] == {
        "name": "community-image",
        "fullyQualifiedName": "arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/community-image",
        "kind": "resource",
    }
    assert public["properties"]["path"] == "/distributions/0/amiDistributionConfiguration/launchPermission/userGroups/0"
    assert re.fullmatch(r"[0-9a-f]{32}", public["partialFingerprints"]["ibAuditFingerprint/v2"])
    # A medium finding keeps its explicit "warning" level (the default a naive serialiser drops).
    name = next(r for r in _results(log) if r["ruleId"] == "IBD009")
    assert name["level"] == "warning"
    ibd002 = rules[1]
    assert ibd002["properties"]["security-severity"] == "9.5"
    assert ibd002["properties"]["tags"][0] == "security"
    assert ibd002["defaultConfiguration"]["level"] == "error"
    assert set(ibd002["help"]) == {"text", "markdown"} and "**Fix.**" in ibd002["help"]["markdown"]
    assert ibd002["helpUri"].endswith("#ibd002-ami-public-launch-permission")


def test_suppressions_are_native(sarif):
    _, log, _ = sarif("examples/mixed-estate.json")
    suppressed = [r for r in _results(log) if "suppressions" in r]
    assert [(r["ruleId"], r["suppressions"]) for r in suppressed] == [
        ("IBD001", [{"kind": "inSource", "status": "accepted", "justification": "accepted until Q3 (SEC-142)"}])
    ]


def test_category_sets_automation_details(sarif):
    _, log, _ = sarif("examples/public-ami.json", "--sarif-category", "aws/111122223333/us-east-1")
    assert log["runs"][0]["automationDetails"] == {"id": "aws/111122223333/us-east-1/"}
    _, log, _ = sarif("examples/public-ami.json")
    assert "automationDetails" not in log["runs"][0]


def test_fingerprints_survive_blank_lines_above_the_resource(sarif, tmp_path):
    text = (EXAMPLES / "public-ami.json").read_text()
    target = tmp_path / "public-ami.json"
    target.write_text(text)
    _, before, _ = sarif(str(target))
    target.write_text(text.replace('  "distributionConfiguration": {', '\n\n\n  "distributionConfiguration": {', 1))
    _, after, _ = sarif(str(target))

    def key(log):
        return [
            (r["ruleId"], r["partialFingerprints"], r["locations"][0]["physicalLocation"]["region"]["startLine"])
            for r in _results(log)
        ]

    assert [(a, b) for a, b, _ in key(before)] == [(a, b) for a, b, _ in key(after)]
    assert [line + 3 for *_, line in key(before)] == [line for *_, line in key(after)]


def test_results_beyond_githubs_limit_keep_the_most_severe(sarif, monkeypatch):
    from auditor.reports import sarif as sarif_module

    _, full, _ = sarif("examples/", "--config", "examples/ib-audit.toml")
    total = len(_results(full))
    monkeypatch.setattr(sarif_module, "MAX_RESULTS", 3)
    _, log, _ = sarif("examples/", "--config", "examples/ib-audit.toml")
    results = _results(log)
    assert len(results) == 3
    assert {r["ruleId"] for r in results} <= {"IBD002", "IBD001", "IBD005", "IBD006", "IBD007", "IBD008"}
    assert any(r["ruleId"] == "IBD002" for r in results)  # the one critical finding is kept
    (note,) = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert note["level"] == "warning" and note["message"]["text"].startswith(
        f"{total - 3} of {total} results were left out"
    )


def _gzipped_size(results: list[dict]) -> int:
    """What an uploader sends: the compact JSON, gzipped (the status is added after the check)."""
    import gzip

    plain = json.loads(json.dumps(results))
    for res in plain:
        for suppression in res.get("suppressions", []):
            suppression.pop("status", None)
    return len(gzip.compress(json.dumps(plain, separators=(",", ":"), ensure_ascii=False).encode()))


def test_results_beyond_githubs_size_limit_are_cut_until_they_fit(sarif, monkeypatch):
    from auditor.reports import sarif as sarif_module

    _, full, _ = sarif("examples/", "--config", "examples/ib-audit.toml")
    total = len(_results(full))
    limit = _gzipped_size(_results(full)) // 2
    monkeypatch.setattr(sarif_module, "MAX_GZIP_BYTES", limit)
    _, log, _ = sarif("examples/", "--config", "examples/ib-audit.toml")
    results = _results(log)
    assert 0 < len(results) < total
    assert _gzipped_size(results) <= limit
    assert any(r["ruleId"] == "IBD002" for r in results)  # the one critical finding is kept
    (note,) = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert note["message"]["text"].startswith(f"{total - len(results)} of {total} results were left out")


def _masked(log: dict) -> dict:
    text = json.dumps(log, indent=2, sort_keys=True)
    text = text.replace(REPO.as_uri(), "file:///REPO")
    from auditor import __version__

    return json.loads(text.replace(f'"{__version__}"', '"VERSION"'))


def test_snapshot_of_the_examples(sarif):
    _, log, _ = sarif("examples/", "--config", "examples/ib-audit.toml")
    masked = _masked(log)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(masked, indent=2, sort_keys=True) + "\n")
    assert masked == json.loads(SNAPSHOT.read_text())


@settings(max_examples=300, deadline=None)
@given(
    message=st.text(alphabet=st.sampled_from("ab .!?\n\t\u00a0\u2028"), max_size=12),
    name=st.text(alphabet=st.sampled_from("cd .)\n\t\u00a0"), max_size=8),
)
def test_result_message_is_the_sentence_of_message_and_configuration(message, name):
    """The writer normalises a message and a configuration's name once each and joins
    them; that must be what normalising the joined text would give."""
    from types import SimpleNamespace

    from auditor.model import Finding, Location, Severity
    from auditor.reports import sarif as sarif_module

    finding = Finding("IBD001", "slug", Severity.HIGH, message, name, "/a", Location(file="f.json"), "0" * 32)
    results = sarif_module._Results(SimpleNamespace(targets=()), {"IBD001": 0})
    (result,) = results([finding])
    assert result.message.text == sarif_module._sentence(f"{message} (configuration {name})")


def test_size_check_says_fits_only_when_the_gzipped_text_does(monkeypatch):
    """The check stops compressing once the rest cannot push it past the limit; it must
    still never say "fits" for text that gzips past the limit at the level it uses
    (give or take the few bytes its flushes change)."""
    import gzip

    from auditor.reports import sarif as sarif_module

    data = os.urandom(3 << 20) + bytes(3 << 20)  # 3 MiB that does not compress, 3 MiB that does
    gzipped = len(gzip.compress(data, compresslevel=1))
    for limit, fits in ((gzipped * 99 // 100, False), (gzipped * 101 // 100, True), (len(data) - (1 << 20), True)):
        monkeypatch.setattr(sarif_module, "MAX_GZIP_BYTES", limit)
        assert sarif_module._compresses_under_limit([data[:1000], data[1000:]]) is fits, limit


@settings(max_examples=200, deadline=None)
@given(
    file=st.sampled_from([None, "a.json", "dir/b c.yaml", os.path.abspath("abs.json")]),
    span=st.sampled_from([None, (1, 1, 1, 1), (12, 3, 40, 7)]),
    target=st.sampled_from([None, "", "t1", "unknown"]),
    name=st.sampled_from(["", "golden image"]),
    suppressed=st.sampled_from([None, ("tag", "approved"), ("config", "")]),
    baseline=st.sampled_from([None, "", "new", "unchanged"]),
    text=st.text(alphabet=st.sampled_from('a "\\\n\u2028é'), max_size=6),
)
def test_the_least_layout_of_a_result_is_at_most_any_results(file, span, target, name, suppressed, baseline, text):
    """The size check counts a result not yet compressed as its indented text less the
    layout every result has; no result may have less (or the ceiling would be low)."""
    from types import SimpleNamespace

    from auditor.model import Finding, Location, Origin, Severity, Span, Suppression, Target
    from auditor.reports import sarif as sarif_module

    targets = (Target("t1", name, Origin("json", file="a.json")),) if target == "t1" else ()
    finding = Finding(
        "IBD001",
        "slug",
        Severity.LOW,
        text,
        target,
        text,
        Location(file=file, span=Span(*span) if span else None),
        text,
        suppressed=Suppression(*suppressed) if suppressed else None,
        baseline_state=baseline,
    )
    results = sarif_module._Results(SimpleNamespace(targets=targets), {"IBD001": 0})([finding])
    indented = sarif_module.dumps([[[results]]], indent=True)
    compact = sarif_module.dumps(results[0])
    layout = len(indented) - len(sarif_module._NESTED_OPEN) - len(sarif_module._NESTED_CLOSE) - len(compact)
    assert layout >= sarif_module._least_layout()


def _split_scan(tmp_path, accounts: int):
    """Configurations saved from ``accounts`` accounts (one each, in six regions), scanned
    with --sarif-split account-region; the SARIF log (None when not written) and the code."""
    from auditor.cli import main

    tmp_path.mkdir(exist_ok=True)
    folder = tmp_path / "configs"
    folder.mkdir()
    for n in range(accounts):
        account = f"{100000000000 + n:012d}"
        ami = {"name": "fixed", "launchPermission": {"userGroups": ["all"]}}
        arn = f"arn:aws:imagebuilder:us-east-1:{account}:distribution-configuration/c{n}"
        regions = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "sa-east-1"]
        distributions = [{"region": region, "amiDistributionConfiguration": ami} for region in regions]
        document = {"distributionConfiguration": {"name": f"c{n}", "arn": arn, "distributions": distributions}}
        (folder / f"c{n:02}.json").write_text(json.dumps(document, indent=2))
    out = tmp_path / "split.sarif"
    code = main(
        [
            "scan",
            str(folder),
            "--sarif-split",
            "account-region",
            "-f",
            f"sarif={out}",
            "-f",
            f"json={tmp_path / 'r.json'}",
        ]
    )
    return (json.loads(out.read_text()) if out.exists() else None), code


def test_split_writes_at_most_twenty_runs(tmp_path, capsys):
    """GitHub rejects an upload of more than 20 runs: 21 account/region pairs are an error,
    and no SARIF file is written (the other reports are)."""
    log, code = _split_scan(tmp_path, 21)
    err = capsys.readouterr().err
    assert code == 2
    assert log is None
    assert (tmp_path / "r.json").exists()
    assert (
        "ib-audit: error: cannot write the sarif report: --sarif-split account-region makes one run per account "
        "and region, 21 here, and GitHub code scanning rejects an upload of more than 20 runs"
    ) in err
    log, code = _split_scan(tmp_path / "twenty", 20)
    assert code == 1
    assert [run["automationDetails"]["id"] for run in log["runs"]] == [
        f"ib-audit/{100000000000 + n:012d}/us-east-1/" for n in range(20)
    ]


def test_split_runs_share_the_size_limit(tmp_path, monkeypatch, capsys):
    """The 10 MB limit is the whole file's: with a limit that the split results exceed
    together but each run alone would not, results are cut so that all runs fit."""
    from auditor.reports import sarif as sarif_module

    log, _ = _split_scan(tmp_path / "full", 4)
    every = [r for run in log["runs"] for r in run["results"]]
    sizes = [_gzipped_size(run["results"]) for run in log["runs"]]
    limit = max(sizes) * 2  # each run fits alone, the four together do not
    assert sum(sizes) > limit
    monkeypatch.setattr(sarif_module, "MAX_GZIP_BYTES", limit)
    log, _ = _split_scan(tmp_path / "cut", 4)
    capsys.readouterr()
    kept = [r for run in log["runs"] for r in run["results"]]
    assert 0 < len(kept) < len(every)
    assert sum(_gzipped_size(run["results"]) for run in log["runs"]) <= limit
