"""Finding identity from meaning: semantic keys, resource identities, and the edits people
make every day run against a baseline in every source format."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from iac_writer import to_cloudformation, to_terraform

from auditor.cli import main
from auditor.identity import SemanticKeys, disambiguate, semantic_key
from auditor.model import Origin, Target, Unresolved

KEY_USE1 = "arn:aws:kms:us-east-1:111122223333:key/0a1b2c3d-1111-2222-3333-444455556666"
KEY_APSE2 = "arn:aws:kms:ap-southeast-2:111122223333:key/0a1b2c3d-1111-2222-3333-444455556666"
ARN = "arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/golden"

CONFIG = {
    "name": "golden",
    "distributions": [
        {
            "region": "us-east-1",
            "amiDistributionConfiguration": {
                "name": "golden-{{ imagebuilder:buildDate }}",
                "kmsKeyId": KEY_USE1,
                "targetAccountIds": ["111122223333", "999988887777"],
                "launchPermission": {"userIds": ["444455556666", "999900001111"], "userGroups": ["all"]},
            },
            "launchTemplateConfigurations": [
                {"launchTemplateId": "lt-0123456789abcdef0", "accountId": "111122223333"},
                {"launchTemplateId": "lt-0fedcba9876543210", "accountId": "123412341234"},
            ],
            "fastLaunchConfigurations": [
                {
                    "enabled": True,
                    "accountId": "111122223333",
                    "launchTemplate": {"launchTemplateId": "lt-0123456789abcdef0"},
                    "maxParallelLaunches": 2,
                },
                {
                    "enabled": True,
                    "accountId": "444455556666",
                    "launchTemplate": {"launchTemplateName": "fast"},
                    "maxParallelLaunches": 100,
                },
            ],
        },
        {"region": "eu-west-1", "amiDistributionConfiguration": {"name": "golden-{{ imagebuilder:buildDate }}"}},
    ],
}
NEW_FIRST = {
    "region": "ap-southeast-2",
    "amiDistributionConfiguration": {"name": "golden-{{ imagebuilder:buildDate }}", "kmsKeyId": KEY_APSE2},
}
# Built in us-east-1: CloudFormation and Terraform files do not say so, and IBD001 needs
# to know that eu-west-1 is a copy (kmsKeyId does not apply to the original AMI).
POLICY = 'owner-region = "us-east-1"\n[rules.IBD006]\nallowed-accounts = ["111122223333", "444455556666"]\n'


# -- semantic keys ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pointer", "key"),
    [
        ("", ""),
        ("/name", "/name"),
        (
            "/distributions/1/amiDistributionConfiguration",
            '/distributions[region="eu-west-1"]/amiDistributionConfiguration',
        ),
        (
            "/distributions/0/amiDistributionConfiguration/targetAccountIds/1",
            '/distributions[region="us-east-1"]/amiDistributionConfiguration/targetAccountIds["999988887777"]',
        ),
        (
            "/distributions/0/amiDistributionConfiguration/launchPermission/userGroups/0",
            '/distributions[region="us-east-1"]/amiDistributionConfiguration/launchPermission/userGroups["all"]',
        ),
        (
            "/distributions/0/launchTemplateConfigurations/1/accountId",
            '/distributions[region="us-east-1"]/launchTemplateConfigurations'
            '[accountId="123412341234",launchTemplateId="lt-0fedcba9876543210"]/accountId',
        ),
        (
            "/distributions/0/fastLaunchConfigurations/1/maxParallelLaunches",
            '/distributions[region="us-east-1"]/fastLaunchConfigurations'
            '[accountId="444455556666",launchTemplate="fast"]/maxParallelLaunches',
        ),
        # A member the configuration lacks: the rest of the pointer as written.
        (
            "/distributions/1/amiDistributionConfiguration/kmsKeyId",
            '/distributions[region="eu-west-1"]/amiDistributionConfiguration/kmsKeyId',
        ),
        ("/distributions/7/region", "/distributions/7/region"),
    ],
)
def test_semantic_key(pointer, key):
    assert semantic_key(CONFIG, pointer) == key


def test_semantic_key_duplicates_unresolved_and_escaping():
    config = {
        "distributions": [
            {"region": "us-east-1"},
            {"region": Unresolved("var.region")},
            {"region": "us-east-1"},
            {"amiDistributionConfiguration": {"targetAccountIds": ["1", "1"]}},
        ],
        "Tags": [{"Key": "team", "Value": "a"}],
        "orgs": ["arn:aws:organizations::1:organization/o-abc"],
    }
    keys = SemanticKeys(config)
    # The same region twice: the second is told apart by occurrence, the first keeps its key.
    assert keys("/distributions/0") == '/distributions[region="us-east-1"]'
    assert keys("/distributions/2/region") == '/distributions[region="us-east-1"]#2/region'
    assert keys("/distributions/1") == '/distributions[region=<"var.region">]'
    assert keys("/distributions/3") == "/distributions[region=null]"
    assert (
        keys("/distributions/3/amiDistributionConfiguration/targetAccountIds/1")
        == '/distributions[region=null]/amiDistributionConfiguration/targetAccountIds["1"]#2'
    )
    assert keys("/Tags/0/Value") == '/Tags[Key="team"]/Value'
    # A "/" in a value is escaped as in any JSON Pointer token.
    assert keys("/orgs/0") == '/orgs["arn:aws:organizations::1:organization~1o-abc"]'
    assert keys("/a~1b") == "/a~1b"


def test_resource_identity_is_never_the_file():
    def target(kind, **origin):
        return Target(id=f"x/{kind}.file#r", name="n", origin=Origin(kind=kind, file="x/f", **origin), config={})

    assert target("json", arn=ARN).identity == ARN
    assert target("aws", arn=ARN).identity == ARN
    assert target("cloudformation", resource="Golden").identity == "cloudformation:Golden"
    assert target("terraform", resource="aws_x.golden").identity == "terraform:aws_x.golden"
    assert target("terraform-plan", resource="aws_x.golden").identity == "terraform:aws_x.golden"
    named = Target(id="a.json", name="n", origin=Origin(kind="json", file="a.json"), config={"name": "golden"})
    assert named.identity == "name:golden"
    # A bare --distributions list has nothing but its file.
    bare = Target(id="d.json", name="d", origin=Origin(kind="json", file="d.json"), config={"distributions": []})
    assert bare.identity == "file:d.json"


def test_disambiguate_keeps_unique_fingerprints_and_splits_collisions():
    prints = [("a", "t1", "m"), ("b", "t1", "m"), ("b", "t2", "m"), ("c", "t1", "x"), ("c", "t1", "y")]
    out = disambiguate(prints)
    assert out[0] == "a"
    assert len(set(out)) == 5
    # Two problems at one path of one target: the first keeps the plain fingerprint.
    assert out[3] == "c" and out[4] != "c"
    # The same fingerprint in two targets: both qualified by their target.
    assert out[1] != "b" and out[2] != "b"


# -- the edit matrix -----------------------------------------------------------------------------
def _json_text(config: dict, indent: int = 2) -> str:
    return json.dumps({"distributionConfiguration": {"arn": ARN, **config}}, indent=indent)


def _cfn_resource(config: dict, logical_id: str) -> str:
    text, _ = to_cloudformation(config, logical_id)
    return "".join(text.splitlines(keepends=True)[2:])  # the resource, without the template header


def _cfn_text(config: dict, logical_id: str = "Golden") -> str:
    return "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n" + _cfn_resource(config, logical_id)


def _tf_text(config: dict, name: str = "golden") -> str:
    return to_terraform(config, name)[0]


FORMATS = {
    "json": ("golden.json", _json_text),
    "cloudformation": ("stack.yaml", _cfn_text),
    "terraform": ("main.tf", _tf_text),
}


def _reformatted(kind: str, text: str) -> str:
    if kind == "json":
        return json.dumps(json.loads(text), indent=8)
    if kind == "cloudformation":
        return json.dumps(yaml.safe_load(text), indent=1)  # the same template as JSON
    return "\n".join(line.replace("  ", "    ").replace(" = ", "   =   ") for line in text.splitlines()) + "\n"


def _with_blank_lines(text: str) -> str:
    lines = text.splitlines()
    middle = len(lines) // 2
    return "\n\n" + "\n".join(lines[:middle]) + "\n\n\n" + "\n".join(lines[middle:]) + "\n"


def _reversed_lists(config: dict) -> dict:
    edited = copy.deepcopy(config)
    for dist in edited["distributions"]:
        ami = dist.get("amiDistributionConfiguration", {})
        ami.get("targetAccountIds", []).reverse()
        ami.get("launchPermission", {}).get("userIds", []).reverse()
        dist.get("launchTemplateConfigurations", []).reverse()
        dist.get("fastLaunchConfigurations", []).reverse()
    return edited


def _scan(repo: Path, *args: str) -> tuple[int, dict]:
    out = repo.parent / "report.json"
    code = main(["scan", str(repo), "--config", str(repo.parent / "policy.toml"), "-f", f"json={out}", *args])
    return code, json.loads(out.read_text())


def _states(report: dict) -> list[tuple[str, str, str, str | None]]:
    return sorted((f["rule_id"], f["key"], f["target"], f["baseline_state"]) for f in report["findings"])


@pytest.fixture
def baselined(tmp_path, monkeypatch, capsys):
    """A repository in one format with a baseline of its findings; edit it, scan again."""

    def make(kind: str):
        monkeypatch.chdir(tmp_path)
        (tmp_path / "policy.toml").write_text(POLICY)
        repo = tmp_path / "repo"
        repo.mkdir()
        name, render = FORMATS[kind]
        (repo / name).write_text(render(CONFIG))
        code, before = _scan(repo, "--write-baseline", str(tmp_path / "baseline.json"))
        capsys.readouterr()
        assert code == 0
        return repo, name, render, before

    return make


EDITS = ["insert-first", "reorder-distributions", "reorder-lists", "blank-lines", "reformat", "move", "rename"]


@pytest.mark.parametrize("kind", sorted(FORMATS))
@pytest.mark.parametrize("edit", EDITS)
def test_everyday_edits_keep_every_finding_unchanged(baselined, capsys, kind, edit):
    repo, name, render, before = baselined(kind)
    file = repo / name
    if edit == "insert-first":
        file.write_text(render({**CONFIG, "distributions": [NEW_FIRST, *CONFIG["distributions"]]}))
    elif edit == "reorder-distributions":
        file.write_text(render({**CONFIG, "distributions": CONFIG["distributions"][::-1]}))
    elif edit == "reorder-lists":
        file.write_text(render(_reversed_lists(CONFIG)))
    elif edit == "blank-lines":
        file.write_text(_with_blank_lines(file.read_text()))
    elif edit == "reformat":
        file.write_text(_reformatted(kind, file.read_text()))
    elif edit == "move":
        # Into another file of a subdirectory; the old file keeps something unrelated.
        (repo / "images").mkdir()
        shutil.move(file, repo / "images" / name)
        file.write_text({"json": "[]", "cloudformation": "Resources: {}\n", "terraform": 'variable "x" {}\n'}[kind])
    elif edit == "rename":
        file.rename(repo / ("renamed-" + name))
    code, after = _scan(repo, "--baseline", str(repo.parent / "baseline.json"))
    capsys.readouterr()
    assert after["errors"] == []
    assert [f for f in after["findings"] if f["baseline_state"] != "unchanged"] == []
    # The same findings, by meaning, and nothing reported fixed.
    assert sorted((f["rule_id"], f["key"]) for f in after["findings"]) == sorted(
        (f["rule_id"], f["key"]) for f in before["findings"]
    )
    assert after["fixed"] == []
    assert code == 0


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_the_matrix_covers_every_kind_of_list_entry(baselined, kind):
    _, _, _, before = baselined(kind)
    keys = {(f["rule_id"], f["key"]) for f in before["findings"]}
    us = '/distributions[region="us-east-1"]'
    assert {
        ("IBD001", '/distributions[region="eu-west-1"]/amiDistributionConfiguration'),
        ("IBD002", f'{us}/amiDistributionConfiguration/launchPermission/userGroups["all"]'),
        ("IBD006", f'{us}/amiDistributionConfiguration/targetAccountIds["999988887777"]'),
        ("IBD006", f'{us}/amiDistributionConfiguration/launchPermission/userIds["999900001111"]'),
        (
            "IBD006",
            f'{us}/launchTemplateConfigurations[accountId="123412341234",launchTemplateId="lt-0fedcba9876543210"]'
            "/accountId",
        ),
        (
            "IBD003",
            f'{us}/fastLaunchConfigurations[accountId="111122223333",launchTemplate="lt-0123456789abcdef0"]'
            "/maxParallelLaunches",
        ),
        (
            "IBD003",
            f'{us}/fastLaunchConfigurations[accountId="444455556666",launchTemplate="fast"]/maxParallelLaunches',
        ),
    } <= keys


COPY_EDITS = {
    # The same mistakes in another resource: another ARN, logical id or address.
    "json": lambda repo: (repo / "copy.json").write_text(_json_text(CONFIG).replace("/golden", "/golden-copy")),
    "cloudformation": lambda repo: (repo / "stack.yaml").write_text(
        _cfn_text(CONFIG) + _cfn_resource({**CONFIG, "name": "golden-copy"}, "GoldenCopy")
    ),
    "terraform": lambda repo: (repo / "main.tf").write_text(
        _tf_text(CONFIG) + _tf_text({**CONFIG, "name": "golden-copy"}, "golden_copy")
    ),
}


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_the_same_mistake_in_another_resource_is_new(baselined, capsys, kind):
    repo, _, _, before = baselined(kind)
    COPY_EDITS[kind](repo)
    code, after = _scan(repo, "--baseline", str(repo.parent / "baseline.json"))
    capsys.readouterr()
    assert code == 1
    states = {}
    for f in after["findings"]:
        states.setdefault(f["baseline_state"], []).append((f["rule_id"], f["key"]))
    expected = sorted((f["rule_id"], f["key"]) for f in before["findings"])
    assert sorted(states["unchanged"]) == expected
    assert sorted(states["new"]) == expected  # every copied mistake, once
    assert len({f["fingerprint"] for f in after["findings"]}) == len(after["findings"])


def test_a_copy_with_the_same_logical_id_in_another_file_is_new(baselined, capsys):
    """Two templates with the same logical id share a resource identity; the baseline entry
    goes to the copy in the file it was recorded in, the other copy is new, and their
    fingerprints differ (code scanning and GitLab keep one result per fingerprint)."""
    repo, _, _, before = baselined("cloudformation")
    (repo / "other-stack.yaml").write_text(_cfn_text(CONFIG))
    code, after = _scan(repo, "--baseline", str(repo.parent / "baseline.json"))
    capsys.readouterr()
    assert code == 1
    by_file = {}
    for f in after["findings"]:
        by_file.setdefault((f["location"]["file"].rsplit("/", 1)[-1], f["baseline_state"]), []).append(f["rule_id"])
    assert set(by_file) == {("stack.yaml", "unchanged"), ("other-stack.yaml", "new")}
    assert len(by_file[("other-stack.yaml", "new")]) == len(before["findings"])
    assert len({f["fingerprint"] for f in after["findings"]}) == len(after["findings"])


def test_version_1_baselines_still_load(baselined, capsys):
    """A baseline written before identities were semantic matches as it always did
    (by position) and says how to rewrite it."""
    repo, name, _, before = baselined("json")
    target_id = str(repo / name)

    def v1(f):
        return hashlib.sha256(f"{f['rule_id']}\0{ARN}\0{f['path']}".encode()).hexdigest()[:32]

    old = {
        "version": 1,
        "tool": "ib-audit 0.1.0",
        "findings": [
            {"fingerprint": v1(f), "rule_id": f["rule_id"], "target": target_id, "path": f["path"]}
            for f in before["findings"]
        ],
    }
    (repo.parent / "old.json").write_text(json.dumps(old))
    code, after = _scan(repo, "--baseline", str(repo.parent / "old.json"))
    err = capsys.readouterr().err
    assert code == 0
    assert {f["baseline_state"] for f in after["findings"]} == {"unchanged"}
    assert after["warnings"] == [
        {
            "kind": "baseline",
            "input": str(repo.parent / "old.json"),
            "message": "version 1 baseline: entries match by list position, so inserting a region makes findings "
            f"new; rewrite it with --write-baseline {repo.parent / 'old.json'}",
        }
    ]
    assert f"ib-audit: warning: {repo.parent / 'old.json'}: version 1 baseline" in err
