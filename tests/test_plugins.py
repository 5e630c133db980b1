"""Plugins: an external pack adds a rule and a reporter; a broken one is reported by name."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from auditor import hookspecs
from auditor.cli import main
from auditor.hookspecs import hookimpl
from auditor.model import Severity, Suppression
from auditor.plugins import PluginHost
from auditor.rule import Rule, Violation, option

from conftest import EXAMPLES


@dataclass(frozen=True)
class _Opts:
    max_distributions: int = option(1, "Most distributions allowed.")


class TooManyRegions(Rule):
    """Limit how many regions a configuration distributes to.

    Why:
      Test rule.

    Example:
      two distributions

    Fix:
      Fewer.
    """

    id = "ACME001"
    slug = "too-many-regions"
    severity = Severity.LOW
    summary = "At most N distributions"
    Options = _Opts

    def check(self, config, ctx):
        if len(config.get("distributions", [])) > self.options.max_distributions:
            yield Violation("/distributions", f"more than {self.options.max_distributions} distributions")


class CountReporter:
    name = "count"
    description = "number of findings"

    def write(self, result, stream, *, color=False):
        stream.write(f"{len(result.findings)} findings\n")


class AcmePack:
    @hookimpl
    def auditor_add_rules(self):
        return [TooManyRegions]

    @hookimpl
    def auditor_add_reporters(self):
        return [CountReporter()]


class BrokenPack:
    @hookimpl
    def auditor_add_rules(self):
        raise RuntimeError("boom")


class ClashingPack:
    @hookimpl
    def auditor_add_rules(self):
        return [type("Clash", (TooManyRegions,), {"__doc__": TooManyRegions.__doc__})]


class RaisingRulePack:
    class Crash(TooManyRegions):
        """Crash.

        Why:
          x

        Example:
          x

        Fix:
          x
        """

        id = "ACME999"

        def check(self, config, ctx):
            raise ValueError("rule bug")

    @hookimpl
    def auditor_add_rules(self):
        return [self.Crash]


@pytest.fixture
def with_plugins(monkeypatch):
    """Make PluginHost() register extra plugin objects, as entry points would."""
    extra: list[tuple[str, object]] = []
    original = PluginHost._load_entry_points

    def load(self):
        original(self)
        for name, plugin in extra:
            self.register(plugin, name, "test")

    monkeypatch.setattr(PluginHost, "_load_entry_points", load)
    return extra


def test_external_pack_adds_a_rule_and_a_reporter(with_plugins, scan, tmp_path, capsys):
    with_plugins.append(("acme", AcmePack()))
    (tmp_path / ".ib-audit.toml").write_text("[rules.ACME001]\nmax-distributions = 2\n")
    config = str(tmp_path / ".ib-audit.toml")
    run = scan(str(EXAMPLES / "unencrypted-multi-region.json"), "--select", "ACME", "--config", config, cwd=tmp_path)
    path = str(EXAMPLES / "unencrypted-multi-region.json")
    assert run.findings() == [("ACME001", "/distributions", path, 5)]
    assert main(["scan", path, "-f", "count"]) == 1
    assert capsys.readouterr().out == "4 findings\n"  # IBD001 twice, IBD011, ACME001


def test_broken_plugin_is_reported_by_name_and_others_still_run(with_plugins, scan):
    with_plugins.append(("broken-pack", BrokenPack()))
    run = scan(str(EXAMPLES / "public-ami.json"))
    assert run.report["errors"] == [
        {"input": "plugin broken-pack", "message": "raised in auditor_add_rules: RuntimeError: boom"}
    ]
    assert {f[0] for f in run.findings()} == {"IBD002", "IBD009"}
    assert run.code == 2


def test_rule_id_clash_names_both_plugins(with_plugins):
    with_plugins.append(("acme", AcmePack()))
    with_plugins.append(("clash", ClashingPack()))
    host = PluginHost()
    ids = [r.id for _, r in host.rules()]
    assert ids.count("ACME001") == 1
    assert [e.display() for e in host.errors] == ["plugin clash: rule id ACME001 is already defined by plugin acme"]


def test_rule_that_raises_is_an_error_naming_rule_and_plugin(with_plugins, scan):
    with_plugins.append(("crashy", RaisingRulePack()))
    run = scan(str(EXAMPLES / "public-ami.json"))
    assert [e["message"] for e in run.report["errors"]] == ["rule ACME999 (plugin crashy) raised ValueError: rule bug"]
    assert {f[0] for f in run.findings()} == {"IBD002", "IBD009"}


def test_plugins_command_lists_contributions(with_plugins, capsys):
    with_plugins.append(("acme", AcmePack()))
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "acme (test)\n  rules: ACME001\n  reporters: count\n" in out
    assert "ib-audit.rules (builtin)\n  rules: IBD001, IBD002," in out
    assert "ib-audit.context (builtin)\n  facts: kms-key, kms-key-policy, kms-grants, iam-role," in out


def test_every_hookspec_is_documented_and_exercised():
    specs = [name for name in dir(hookspecs.AuditorSpec) if name.startswith("auditor_")]
    assert specs == [
        "auditor_add_fact_providers",
        "auditor_add_file_sources",
        "auditor_add_reporters",
        "auditor_add_rules",
        "auditor_add_sinks",
        "auditor_configure",
        "auditor_session_finish",
        "auditor_suppress",
    ]
    for name in specs:
        doc = inspect.getdoc(getattr(hookspecs.AuditorSpec, name))
        assert doc and (":return:" in doc or ":param" in doc), name
    tested = inspect.getsource(inspect.getmodule(test_every_hookspec_is_documented_and_exercised))
    for name in specs:
        if name not in ("auditor_add_rules", "auditor_add_reporters", "auditor_add_file_sources"):
            assert f"def {name}" in tested, f"no test plugin implements {name}"


class Recorder:
    def __init__(self):
        self.seen = {}

    @hookimpl
    def auditor_configure(self, settings):
        self.seen["fail_on"] = settings.fail_on

    @hookimpl
    def auditor_session_finish(self, result):
        self.seen["findings"] = len(result.findings)


def test_configure_and_session_finish_hooks(with_plugins, scan):
    recorder = Recorder()
    with_plugins.append(("recorder", recorder))
    run = scan(str(EXAMPLES / "public-ami.json"), "--fail-on", "high")
    assert recorder.seen == {"fail_on": Severity.HIGH, "findings": len(run.report["findings"])}


class TicketSink:
    """A plugin sink: opens a 'ticket' per critical finding, and fails for one account."""

    name = "tickets"
    description = "test tickets"

    def __init__(self):
        self.sent = []

    def send(self, result, context):
        from auditor.model import InputError
        from auditor.sinks import SinkReport

        self.sent = [f.fingerprint for f in result.findings if f.severity is Severity.CRITICAL]
        return SinkReport(errors=[InputError("tickets", "queue SEC is read-only")], summary={"opened": len(self.sent)})


class SinkPack:
    def __init__(self, sink):
        self.sink = sink

    @hookimpl
    def auditor_add_sinks(self):
        return [self.sink]


class BrokenSink:
    name = "broken"
    description = "raises"

    def send(self, result, context):
        raise RuntimeError("sink bug")


def test_a_plugin_sink_gets_the_result_and_its_errors_join_the_report(with_plugins, scan, capsys):
    sink = TicketSink()
    with_plugins.append(("tickets-pack", SinkPack(sink)))
    with_plugins.append(("broken-pack", SinkPack(BrokenSink())))
    run = scan(str(EXAMPLES / "public-ami.json"), "--sink", "tickets", "--sink", "broken")
    assert sink.sent == [f["fingerprint"] for f in run.report["findings"] if f["severity"] == "critical"] != []
    assert run.report["errors"] == [
        {"input": "tickets", "message": "queue SEC is read-only"},
        {"input": "sink broken", "message": "failed: RuntimeError: sink bug"},
    ]
    assert run.report["sinks"] == {"tickets": {"opened": 1}}
    assert run.code == 2
    assert "ib-audit: tickets: opened 1\n" in run.err


def test_an_unknown_sink_is_a_usage_error(capsys):
    assert main(["scan", str(EXAMPLES / "public-ami.json"), "--sink", "pager"]) == 2
    assert capsys.readouterr().err == "ib-audit: error: unknown sink 'pager' (available: security-hub)\n"


def test_rules_json_lists_options(capsys):
    assert main(["rules", "--format", "json"]) == 0
    rules = json.loads(capsys.readouterr().out)
    ibd006 = next(r for r in rules if r["id"] == "IBD006")
    assert ibd006["options"] == [
        {
            "name": "allowed-accounts",
            "type": "list of strings",
            "default": [],
            "help": "Account ids the AMI may reach; empty turns the allowlist off.",
        }
    ]
    assert [r["id"] for r in rules] == [f"IBD{n:03}" for n in [*range(1, 18), *range(20, 28)]]
    ibd014 = next(r for r in rules if r["id"] == "IBD014")
    assert ibd014["retired"].startswith("timeoutMinutes is a member Image Builder does not use")
    assert ibd006["retired"] is None and ibd006["sources"][1]["shape"] == "SsmParameterConfiguration.amiAccountId"


class DocumentedRule(TooManyRegions):
    """Limit regions, documented on the pack's own site.

    Why:
      x

    Example:
      x

    Fix:
      x
    """

    id = "ACME002"
    slug = "documented"
    tags = ("compliance", "acme")
    help_url = "https://acme.example/rules/ACME002"


class DocumentedPack:
    @hookimpl
    def auditor_add_rules(self):
        return [TooManyRegions, DocumentedRule]


def test_plugin_rules_carry_their_own_help_uri_and_tags(with_plugins, tmp_path, capsys, monkeypatch):
    """A plugin's rule links to its own documentation (or none), never to ours; SARIF
    rule tags are the rule's own, with no "security" added to rules that are not."""
    with_plugins.append(("acme", DocumentedPack()))
    monkeypatch.chdir(tmp_path)
    main(["scan", str(EXAMPLES / "windows-fast-launch.json"), "-f", "sarif=out.sarif", "--select", "ACME,IBD003"])
    rules = {r["id"]: r for r in json.loads((tmp_path / "out.sarif").read_text())["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["ACME002"]["helpUri"] == "https://acme.example/rules/ACME002"
    assert rules["ACME002"]["properties"]["tags"] == ["compliance", "acme"]
    assert "[Rule documentation](https://acme.example/rules/ACME002)" in rules["ACME002"]["help"]["markdown"]
    assert "helpUri" not in rules["ACME001"] and "Rule documentation" not in rules["ACME001"]["help"]["markdown"]
    assert rules["IBD003"]["properties"]["tags"] == ["reliability", "cost", "fast-launch"]
    assert rules["IBD003"]["helpUri"].endswith("docs/rules.md#ibd003-fast-launch-bounds")
    assert main(["explain", "ACME001"]) == 0
    assert "More:" not in capsys.readouterr().out
    assert main(["rules", "--format", "json"]) == 0
    listed = {r["id"]: r["help_uri"] for r in json.loads(capsys.readouterr().out)}
    assert listed["ACME001"] is None and listed["ACME002"] == "https://acme.example/rules/ACME002"


class TicketSuppressor:
    """A plugin's own suppressions, e.g. risk acceptances kept in a ticketing system."""

    @hookimpl
    def auditor_suppress(self, finding, target):
        if finding.rule_id == "IBD009":
            return Suppression("config", "risk accepted in RISK-12")
        return None


def test_plugin_suppressions_come_after_the_authors_own(with_plugins, scan, tmp_path):
    with_plugins.append(("tickets", TicketSuppressor()))
    doc = json.loads((EXAMPLES / "public-ami.json").read_text())
    doc["distributionConfiguration"]["tags"] = {"ib-audit:ignore": "IBD009:renamed next sprint"}
    (tmp_path / "tagged.json").write_text(json.dumps(doc))
    run = scan(str(EXAMPLES / "public-ami.json"), str(tmp_path / "tagged.json"))
    assert sorted((f["target"].rsplit("/", 1)[-1], f["rule_id"], f["suppressed"]) for f in run.report["findings"]) == [
        ("public-ami.json", "IBD002", None),
        ("public-ami.json", "IBD009", {"kind": "config", "reason": "risk accepted in RISK-12"}),
        ("tagged.json", "IBD002", None),
        ("tagged.json", "IBD009", {"kind": "tag", "reason": "renamed next sprint"}),
    ]


def test_a_plugin_rule_without_documentation_still_reaches_asff_and_ocsf(with_plugins, tmp_path, capsys, monkeypatch):
    """No help URL means no link in ASFF's Remediation and OCSF's references, not a crash."""
    with_plugins.append(("acme", DocumentedPack()))
    monkeypatch.chdir(tmp_path)
    code = main(
        [
            "scan",
            str(EXAMPLES / "mixed-estate.json"),
            "--select",
            "ACME001",
            "-f",
            "asff=out.asff.json",
            "-f",
            "ocsf=out.jsonl",
            "--asff-account",
            "111122223333",
            "--asff-region",
            "us-east-1",
        ]
    )
    assert code == 1, capsys.readouterr().err
    (asff_finding, *_) = json.loads((tmp_path / "out.asff.json").read_text())
    assert asff_finding["GeneratorId"] == "ib-audit/ACME001"
    assert asff_finding["Remediation"] == {"Recommendation": {"Text": "Fewer."}}
    events = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    failed = [e for e in events if e["compliance"]["status_id"] == 3]
    assert failed and all("references" not in e["remediation"] for e in failed)
    assert all("src_url" not in e["finding_info"] for e in events)


class OwnerProvider:
    """A fact provider that needs no AWS call: the owning team of a configuration."""

    kind = "acme-owner"
    actions = ("acme:GetOwner",)

    def fetch(self, key, call, facts):
        if key.id == "forbidden":
            from auditor.context import CallFailed

            raise CallFailed("acme:GetOwner", "AccessDenied")
        return {"golden": "platform-team"}.get(key.id)


class NeedsOwner(Rule):
    """Every configuration must have an owning team.

    Why:
      Test rule.

    Example:
      x

    Fix:
      x
    """

    id = "ACME020"
    slug = "owner-known"
    severity = Severity.LOW
    summary = "Owner known"
    facts = ("acme-owner",)

    def requests(self, config, ctx):
        from auditor.context import FactKey

        return [FactKey("acme-owner", ctx.account or "", "", config["name"])]

    def check(self, config, ctx):
        fact = ctx.fact(self.requests(config, ctx)[0])
        if not fact.known:
            ctx.cannot_verify("/name", fact.error)
        elif fact.value is None:
            yield Violation("/name", "no owning team")


class ContextPack:
    @hookimpl
    def auditor_add_fact_providers(self):
        return [OwnerProvider()]

    @hookimpl
    def auditor_add_rules(self):
        return [NeedsOwner]


class NoAws:
    home_account = "111122223333"
    home_region = "us-east-1"

    def caller(self, account, region):
        def call(service, operation, **params):
            raise AssertionError("this provider makes no AWS call")

        return call


def test_fact_providers_hook_feeds_context_rules_each_fact_once(with_plugins, tmp_path):
    from auditor.config import Settings
    from auditor.context import FactStore
    from auditor.engine import audit, configure_rules
    from auditor.model import Origin, Target

    with_plugins.append(("acme-context", ContextPack()))
    host = PluginHost()
    providers = host.fact_providers()
    host.rules()
    assert providers["acme-owner"].actions == ("acme:GetOwner",)
    assert host.infos["acme-context"].contributes == {"facts": ["acme-owner"], "rules": ["ACME020"]}
    settings = Settings(select=("ACME",))
    specs = configure_rules(host, settings)
    targets = [
        Target(id=name, name=name, origin=Origin(kind="json", file=f"{name}.json"), config={"name": name})
        for name in ("golden", "orphan", "orphan-copy", "forbidden")
    ]
    targets[2] = Target(id="orphan-copy", name="orphan", origin=Origin(kind="json"), config={"name": "orphan"})
    offline = audit(host, specs, targets, [], settings)
    assert offline.findings == () and offline.rules == ()  # no AWS access: the rule does not run
    store = FactStore(providers, NoAws())
    result = audit(host, specs, targets, [], settings, facts=store)
    assert [(f.target, f.path, f.message) for f in result.findings] == [
        ("orphan", "/name", "no owning team"),
        ("orphan-copy", "/name", "no owning team"),
    ]
    assert [(u.target, u.reason) for u in result.unverified] == [("forbidden", "AccessDenied on acme:GetOwner")]
    assert store.fetches == {"acme-owner": 3}  # golden, orphan (twice asked), forbidden


def test_fact_kind_clash_names_the_plugin(with_plugins):
    with_plugins.append(("acme-context", ContextPack()))
    with_plugins.append(("acme-context-2", ContextPack()))
    host = PluginHost()
    host.fact_providers()
    assert [e.display() for e in host.errors] == ["plugin acme-context-2: fact kind 'acme-owner' is already provided"]


ACME_DISTRIBUTION = '''
from auditor.hookspecs import hookimpl
from auditor.model import Severity
from auditor.rule import Rule, Violation


class NamedConfiguration(Rule):
    """Every configuration must say who owns it in its description.

    Why:
      Test rule of an installed distribution.

    Example:
      no description

    Fix:
      Write one.
    """

    id = "ACME900"
    slug = "described"
    severity = Severity.LOW
    summary = "Configurations have a description"

    def check(self, config, ctx):
        if "description" not in config:
            yield Violation("", "no description")


@hookimpl
def auditor_add_rules():
    return [NamedConfiguration]
'''


def test_an_installed_distribution_with_an_entry_point_is_loaded(tmp_path):
    # A real distribution on the path (dist-info with entry_points.txt), as pip installs
    # one: start-up skips importlib.metadata only when no distribution names the group.
    site = tmp_path / "site"
    site.mkdir()
    (site / "acme_ib_audit.py").write_text(ACME_DISTRIBUTION)
    info = site / "acme_ib_audit-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-ib-audit\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[ib_audit]\nacme = acme_ib_audit\n")
    env = {**os.environ, "PYTHONPATH": str(site)}

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-P", "-m", "auditor", *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env)

    listed = run("plugins")
    assert listed.returncode == 0, listed.stderr
    assert "acme (acme-ib-audit 1.0)\n  rules: ACME900\n" in listed.stdout
    config = tmp_path / "bare.json"
    config.write_text('{\n  "name": "x",\n  "distributions": [{"region": "us-east-1"}]\n}\n')
    scanned = run("scan", str(config), "--select", "ACME900", "-f", "json", "--fail-on", "never")
    assert scanned.returncode == 0, scanned.stderr
    findings = [(f["rule_id"], f["path"], f["location"]["start_line"]) for f in json.loads(scanned.stdout)["findings"]]
    assert findings == [("ACME900", "", 1)]
    # Without the distribution on the path, the same scan does not know the rule.
    env.pop("PYTHONPATH")
    assert run("scan", str(config), "--select", "ACME900").returncode == 2


def test_a_json_scan_loads_neither_the_template_readers_nor_importlib_metadata(tmp_path):
    code = (
        "import sys\n"
        "from auditor.cli import main\n"
        f"main(['scan', {str(EXAMPLES / 'public-ami.json')!r}, '-f', 'json=/dev/null'])\n"
        "print(sorted(m for m in ('yaml', 'tree_sitter', 'auditor.sources.cloudformation', "
        "'auditor.sources.terraform', 'importlib.metadata') if m in sys.modules))\n"
        f"main(['scan', {str(EXAMPLES / 'cloudformation' / 'conditional-sharing.yaml')!r}, '-f', 'json=/dev/null'])\n"
        "print('yaml' in sys.modules and 'auditor.sources.cloudformation' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.stdout.splitlines() == ["[]", "True"], proc.stdout + proc.stderr
