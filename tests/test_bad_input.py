"""Bad input: one clear line naming the input, exit 2, and every other input still audited."""

from __future__ import annotations

import json
import os

from conftest import EXAMPLES

PUBLIC = str(EXAMPLES / "public-ami.json")
PUBLIC_FINDING = ("IBD002", "/distributions/0/amiDistributionConfiguration/launchPermission/userGroups/0")


def _assert_rest_audited(run):
    assert PUBLIC_FINDING in [(r, p) for r, p, _, _ in run.findings()]
    assert any(t["status"] == "audited" and t["id"].endswith("public-ami.json") for t in run.report["targets"])


def _error_lines(run):
    return [line for line in run.out.splitlines() if line.startswith("error: ")]


def test_malformed_json_names_file_line_and_column(scan, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "distributions": [\n    {"region": "us-east-1",}\n  ]\n}\n')
    run = scan(str(bad), PUBLIC)
    assert run.code == 2
    assert run.report["errors"] == [
        {
            "input": str(bad),
            "message": "line 3, column 28: invalid JSON: Expecting property name enclosed in double quotes",
        }
    ]
    assert [t["status"] for t in run.report["targets"] if t["id"] == str(bad)] == ["error"]
    assert len(_error_lines(run)) == 1
    _assert_rest_audited(run)


def test_wrong_types_are_errors_and_the_rest_of_the_config_is_still_audited(scan, tmp_path):
    bad = tmp_path / "types.json"
    bad.write_text(
        json.dumps(
            {
                "name": "types",
                "distributions": [
                    {
                        "region": "us-east-1",
                        "amiDistributionConfiguration": {"launchPermission": {"userGroups": ["all"]}},
                        "fastLaunchConfigurations": [{"enabled": True, "maxParallelLaunches": "ten"}],
                    }
                ],
            },
            indent=2,
        )
    )
    other = tmp_path / "other.json"
    other_text = '{"name": "x", "distributions": "x"}'
    other.write_text(other_text)
    column = other_text.index('"x"}') + 1
    run = scan(str(bad), str(other), PUBLIC)
    assert run.code == 2
    assert run.report["errors"] == [
        {
            "input": str(bad),
            "message": "line 16, column 34: /distributions/0/fastLaunchConfigurations/0/maxParallelLaunches: expected an integer, got a string",
        },
        {"input": str(other), "message": f"line 1, column {column}: /distributions: expected a list, got a string"},
    ]
    # The public AMI in the same file is still found; the bad value is not guessed at.
    assert (
        "IBD002",
        "/distributions/0/amiDistributionConfiguration/launchPermission/userGroups/0",
        str(bad),
        9,
    ) in run.findings()
    _assert_rest_audited(run)


def test_missing_path(scan):
    run = scan("does/not/exist.json", PUBLIC)
    assert run.code == 2
    assert run.report["errors"] == [{"input": "does/not/exist.json", "message": "no such file or directory"}]
    _assert_rest_audited(run)


def test_unreadable_file(scan, tmp_path):
    link = tmp_path / "dangling.json"
    os.symlink(tmp_path / "nowhere.json", link)
    run = scan(str(link), PUBLIC)
    assert run.code == 2
    assert run.report["errors"] == [{"input": str(link), "message": "cannot read file: no such file (a broken link?)"}]
    _assert_rest_audited(run)


def test_not_utf8(scan, tmp_path):
    bad = tmp_path / "latin1.json"
    data = b'{"distributions": [], "name": "caf\xe9"}'
    bad.write_bytes(data)
    run = scan(str(bad), PUBLIC)
    assert run.code == 2
    offset = data.index(b"\xe9")
    assert run.report["errors"] == [{"input": str(bad), "message": f"not UTF-8 text (invalid byte at offset {offset})"}]


def test_empty_file(scan, tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("")
    run = scan(str(empty), PUBLIC)
    assert run.code == 2
    assert run.report["errors"] == [{"input": str(empty), "message": "empty file"}]
    _assert_rest_audited(run)


def test_file_over_the_size_limit(scan, tmp_path):
    big = tmp_path / "big.json"
    with big.open("w") as fh:
        fh.write('{"distributions": [')
        fh.write(",".join(['{"region": "us-east-1"}'] * 2_200_000))
        fh.write("]}")
    assert big.stat().st_size > 50_000_000
    run = scan(str(big), PUBLIC)
    assert run.code == 2
    assert run.report["errors"] == [
        {
            "input": str(big),
            "message": f"file is {big.stat().st_size / 1e6:.1f} MB, over the 20 MB limit (raise max-file-size-mb in the config)",
        }
    ]
    _assert_rest_audited(run)


def test_explicit_file_that_is_not_a_configuration(scan, tmp_path):
    other = tmp_path / "package.json"
    other.write_text('{"name": "left-pad"}')
    run = scan(str(other), PUBLIC)
    assert run.code == 2
    assert run.report["errors"] == [
        {"input": str(other), "message": "not a recognised EC2 Image Builder distribution configuration"}
    ]


def test_unrelated_files_in_a_directory_are_skipped_quietly(scan, tmp_path):
    (tmp_path / "package.json").write_text('{"name": "left-pad"}')
    (tmp_path / "tsconfig.json").write_text("{ // comments are not JSON\n}")
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "x.json").write_text('{"distributions": "x"}')
    (tmp_path / "cfg.json").write_text('{"name": "cfg-ok", "distributions": [{"region": "us-east-1"}]}')
    run = scan(str(tmp_path))
    assert run.code == 0
    assert [t["id"] for t in run.report["targets"]] == [str(tmp_path / "cfg.json")]


def _stopped(run):
    """A config or usage error: exit 2 before scanning, no report, the problem on stderr."""
    assert run.code == 2
    assert run.report == {} and run.out == ""
    return [line.removeprefix("ib-audit: error: ") for line in run.err.splitlines()]


def test_unknown_config_key_and_wrong_type(scan, tmp_path):
    config = tmp_path / "policy.toml"
    config.write_text('fail_on = "high"\n[rules.IBD006]\nallowed-accounts = "111122223333"\nallowed-acounts = []\n')
    run = scan(PUBLIC, "--config", str(config))
    # Every problem of the file, one line each, so one edit fixes them all.
    assert _stopped(run) == [
        f"{config}: unknown key 'fail_on' (did you mean 'fail-on'?)",
        f"{config}: rules.IBD006.allowed-accounts: expected a list of strings, got '111122223333'",
        f"{config}: unknown key 'rules.IBD006.allowed-acounts' for IBD006 (did you mean 'allowed-accounts'?)",
    ]


def test_unknown_rule_in_config_and_select(scan, tmp_path):
    config = tmp_path / "policy.toml"
    config.write_text("[rules.IBD999]\nseverity = 'low'\n")
    run = scan(PUBLIC, "--config", str(config), "--select", "IBD002,IBX")
    assert _stopped(run) == [
        f"{config}: unknown rule 'IBD999' in 'rules.IBD999' (did you mean 'IBD009'?)",
        "--select: unknown rule id or prefix 'IBX'",
    ]


def test_invalid_toml(scan, tmp_path):
    config = tmp_path / "policy.toml"
    config.write_text("fail-on = \n")
    run = scan(PUBLIC, "--config", str(config))
    (line,) = _stopped(run)
    assert line.startswith(f"{config}: invalid TOML: ")


def test_unknown_format_is_a_usage_error(scan, capsys):
    run = scan(PUBLIC, "-f", "yaml")
    assert run.code == 2
    assert "unknown report format 'yaml'" in run.err
