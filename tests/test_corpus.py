"""Every real public JSON example in ../shared/corpus/json is read without a traceback.

What each yields is pinned: the broken file is a clear error, the misspelt members are
IBD016 findings, the rest are audited.
"""

from __future__ import annotations

import pytest

from conftest import CORPUS, skip_or_fail

JSON_DIR = CORPUS / "json"


@pytest.fixture(autouse=True)
def _corpus_present():
    if not JSON_DIR.is_dir():
        skip_or_fail(f"shared corpus not found at {JSON_DIR}")


BROKEN = "ec2-image-builder-user-guide__cr-upd-ami-distribution-settings__3.json"
MISSPELT = "ec2-image-builder-user-guide__cr-upd-ami-distribution-settings__5.json"


def test_every_corpus_json_file_is_audited_or_a_clear_error(scan):
    run = scan(str(JSON_DIR), "--fail-on", "never")
    files = sorted(p.name for p in JSON_DIR.glob("*.json"))
    statuses = {t["origin"]["file"].rsplit("/", 1)[-1]: t["status"] for t in run.report["targets"]}
    assert sorted(statuses) == files
    assert {name for name, status in statuses.items() if status == "error"} == {BROKEN}
    assert [e["message"] for e in run.report["errors"]] == [
        "line 23, column 18: invalid JSON: Expecting property name enclosed in double quotes"
    ]
    assert "Traceback" not in run.out + run.err
    assert run.code == 2


def test_misspelt_members_in_the_user_guide_are_findings(scan):
    run = scan(str(JSON_DIR / MISSPELT), "--select", "IBD016")
    file = str(JSON_DIR / MISSPELT)
    assert run.findings() == [
        ("IBD016", "/distributions/0/amiDistributionConfiguration/launchPermissions", file, 10),
        ("IBD016", "/distributions/1/amiDistributionConfiguration/tags", file, 21),
        ("IBD016", "/distributions/1/amiDistributionConfiguration/launchPermissions", file, 24),
    ]
    messages = [f["message"] for f in run.report["findings"]]
    assert messages == [
        "'launchPermissions' is not a member of AmiDistributionConfiguration; did you mean 'launchPermission'?",
        "'tags' is not a member of AmiDistributionConfiguration; did you mean 'amiTags'?",
        "'launchPermissions' is not a member of AmiDistributionConfiguration; did you mean 'launchPermission'?",
    ]


def test_update_input_and_bare_distribution_list_shapes(scan, tmp_path):
    update = JSON_DIR / "aws-cli__update-distribution-configuration.json"
    # A bare --distributions list says nothing of its own region: us-west-2 may be it.
    run = scan(str(update), "--select", "IBD001")
    assert run.findings() == []
    assert [(u["rule_id"], u["path"]) for u in run.report["unverified"]] == [
        ("IBD001", "/distributions/0/amiDistributionConfiguration")
    ]
    assert run.report["targets"][0]["origin"] == {"kind": "json", "file": str(update)}
    # Declared elsewhere, the copy to us-west-2 is one.
    config = tmp_path / "owner.toml"
    config.write_text('owner-region = "eu-west-1"\n')
    run = scan(str(update), "--select", "IBD001", "--config", str(config))
    assert run.findings() == [("IBD001", "/distributions/0/amiDistributionConfiguration", str(update), 4)]


def test_get_response_shape_records_arn_account_and_region(scan):
    get = JSON_DIR / "aws-cli__get-distribution-configuration.json"
    run = scan(str(get), "--select", "IBD002")
    origin = run.report["targets"][0]["origin"]
    assert origin["arn"].startswith("arn:aws:imagebuilder:us-west-2:")
    assert origin["region"] == "us-west-2" and len(origin["account"]) == 12
