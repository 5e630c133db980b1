"""The bundled examples: every rule fires where the README says, the compliant file passes."""

from __future__ import annotations

from auditor.rules import BUILTIN_RULES

from conftest import EXAMPLES, REPO

POLICY = "examples/ib-audit.toml"

# In report order: by file, then line and column.
EXPECTED = [
    (
        "IBD001",
        "/distributions/0/amiDistributionConfiguration/kmsKeyId",
        "examples/aws-managed-key-cross-account.json",
        12,
    ),
    (
        "IBD008",
        "/distributions/0/amiDistributionConfiguration/kmsKeyId",
        "examples/aws-managed-key-cross-account.json",
        12,
    ),
    (
        "IBD006",
        "/distributions/0/amiDistributionConfiguration/targetAccountIds/1",
        "examples/aws-managed-key-cross-account.json",
        13,
    ),
    (
        "IBD005",
        "/distributions/1/amiDistributionConfiguration/kmsKeyId",
        "examples/aws-managed-key-cross-account.json",
        21,
    ),
    (
        "IBD006",
        "/distributions/1/amiDistributionConfiguration/launchPermission/userIds/0",
        "examples/aws-managed-key-cross-account.json",
        22,
    ),
    ("IBD013", "/distributions/1/containerDistributionConfiguration", "examples/container-ecr.json", 15),
    (
        "IBD013",
        "/distributions/1/containerDistributionConfiguration/targetRepository/service",
        "examples/container-ecr.json",
        16,
    ),
    (
        "IBD017",
        "/distributions/0/amiDistributionConfiguration/name",
        "examples/create-input-constraints.json",
        8,
    ),
    ("IBD017", "/distributions/0/licenseConfigurationArns/0", "examples/create-input-constraints.json", 13),
    (
        "IBD017",
        "/distributions/0/ssmParameterConfigurations/0/dataType",
        "examples/create-input-constraints.json",
        15,
    ),
    (
        "IBD006",
        "/distributions/0/ssmParameterConfigurations/1/amiAccountId",
        "examples/create-input-constraints.json",
        16,
    ),
    ("IBD017", "/timeoutMinutes", "examples/create-input-constraints.json", 21),
    ("IBD010", "/distributions/0/amiDistributionConfiguration/amiTags", "examples/mixed-estate.json", 12),
    (
        "IBD007",
        "/distributions/0/amiDistributionConfiguration/launchPermission/organizationArns/0",
        "examples/mixed-estate.json",
        15,
    ),
    ("IBD015", "/distributions/0/launchTemplateConfigurations/1/setDefaultVersion", "examples/mixed-estate.json", 20),
    ("IBD011", "/distributions/1/region", "examples/mixed-estate.json", 24),
    ("IBD016", "/distributions/1/amiDistributionConfiguration/launchPermissions", "examples/mixed-estate.json", 29),
    ("IBD010", "/tags", "examples/mixed-estate.json", 34),
    ("IBD001", "/distributions/1/amiDistributionConfiguration", "examples/mixed-estate.json", 52),
    ("IBD009", "/distributions/0/amiDistributionConfiguration/name", "examples/public-ami.json", 10),
    (
        "IBD002",
        "/distributions/0/amiDistributionConfiguration/launchPermission/userGroups/0",
        "examples/public-ami.json",
        13,
    ),
    ("IBD012", "/distributions/0/s3ExportConfiguration", "examples/s3-vm-export.json", 14),
    ("IBD004", "/distributions/0/s3ExportConfiguration/diskImageFormat", "examples/s3-vm-export.json", 15),
    ("IBD012", "/distributions/0/s3ExportConfiguration/s3Bucket", "examples/s3-vm-export.json", 16),
    ("IBD001", "/distributions/1/amiDistributionConfiguration", "examples/unencrypted-multi-region.json", 15),
    ("IBD011", "/distributions/2/region", "examples/unencrypted-multi-region.json", 21),
    ("IBD001", "/distributions/2/amiDistributionConfiguration", "examples/unencrypted-multi-region.json", 22),
    ("IBD003", "/distributions/0/fastLaunchConfigurations/0", "examples/windows-fast-launch.json", 15),
    (
        "IBD003",
        "/distributions/0/fastLaunchConfigurations/0/snapshotConfiguration/targetResourceCount",
        "examples/windows-fast-launch.json",
        17,
    ),
    (
        "IBD003",
        "/distributions/0/fastLaunchConfigurations/0/maxParallelLaunches",
        "examples/windows-fast-launch.json",
        18,
    ),
    ("IBD006", "/distributions/0/fastLaunchConfigurations/1/accountId", "examples/windows-fast-launch.json", 22),
    ("IBD003", "/distributions/0/fastLaunchConfigurations/1/launchTemplate", "examples/windows-fast-launch.json", 23),
]


def test_examples_with_policy_fire_every_rule(scan):
    run = scan(*sorted(str(p.relative_to(REPO)) for p in EXAMPLES.glob("*.json")), "--config", POLICY)
    assert run.findings() == EXPECTED
    # Every rule an offline scan runs: the account-context ones need AWS (tests/test_context.py).
    assert {rule for rule, *_ in EXPECTED} == {
        r.id for r in BUILTIN_RULES if not r.retired and not r.needs_aws_context()
    }
    assert run.code == 1
    assert run.report["errors"] == []
    assert run.report["summary"]["inputs"] == 10
    everything = scan("examples/", "--config", POLICY)
    assert sorted(everything.findings()) == sorted(EXPECTED + IAC_EXPECTED)


def test_suppressed_example_is_reported_but_does_not_count(scan):
    run = scan("examples/mixed-estate.json", "--config", POLICY)
    suppressed = [f for f in run.report["findings"] if f["suppressed"]]
    assert [(f["rule_id"], f["target"], f["suppressed"]) for f in suppressed] == [
        ("IBD001", "examples/mixed-estate.json#/1", {"kind": "tag", "reason": "accepted until Q3 (SEC-142)"})
    ]
    assert run.report["summary"]["suppressed"] == 1
    # The text report counts it but lists it only when asked.
    assert "accepted until Q3" not in run.out and ", 1 suppressed (--show-suppressed lists them)." in run.out
    shown = scan("examples/mixed-estate.json", "--config", POLICY, "--show-suppressed")
    assert "[suppressed: accepted until Q3 (SEC-142)]" in shown.out


def test_compliant_example_passes(scan):
    run = scan("examples/compliant-baseline.json", "--config", POLICY)
    assert run.findings() == []
    assert run.code == 0
    assert "Result: passed" in run.out


def test_without_policy_allowlist_rules_stay_quiet(scan):
    run = scan("examples/")
    fired = {rule for rule, *_ in run.findings()}
    assert "IBD010" not in fired and "IBD011" in fired  # IBD011 still catches the duplicate region
    assert run.code == 1


IAC_EXPECTED = [
    ("IBD001", "/distributions/1/amiDistributionConfiguration", "examples/cloudformation/golden-pipeline.yaml", 25),
    (
        "IBD002",
        "/distributions/1/amiDistributionConfiguration/launchPermission/userGroups/0",
        "examples/cloudformation/golden-pipeline.yaml",
        32,
    ),
    (
        "IBD009",
        "/distributions/0/amiDistributionConfiguration/name",
        "examples/cloudformation/golden-pipeline.yaml",
        48,
    ),
    ("IBD010", "", "examples/cloudformation/golden-pipeline.yaml", 36),
    ("IBD016", "/Tags", "examples/cloudformation/golden-pipeline.yaml", 53),
    (
        "IBD002",
        "/distributions/0/amiDistributionConfiguration/launchPermission/userGroups/0",
        "examples/cloudformation/conditional-sharing.yaml",
        38,
    ),
    (
        "IBD006",
        "/distributions/0/amiDistributionConfiguration/targetAccountIds/1",
        "examples/cloudformation/conditional-sharing.yaml",
        35,
    ),
    ("IBD001", "/distributions/1/amiDistributionConfiguration", "examples/cloudformation/conditional-sharing.yaml", 40),
    (
        "IBD009",
        "/distributions/1/amiDistributionConfiguration/name",
        "examples/cloudformation/conditional-sharing.yaml",
        41,
    ),
    ("IBD001", "/distributions/1/amiDistributionConfiguration", "examples/terraform/main.tf", 23),
    ("IBD003", "/distributions/0/fastLaunchConfigurations/0/maxParallelLaunches", "examples/terraform/main.tf", 44),
    ("IBD013", "/distributions/0/containerDistributionConfiguration", "examples/terraform/main.tf", 59),
    (
        "IBD006",
        "/distributions/0/amiDistributionConfiguration/targetAccountIds/1",
        "examples/terraform/sharing.tf.json",
        18,
    ),
    (
        "IBD015",
        "/distributions/0/launchTemplateConfigurations/0",
        "examples/terraform/sharing.tf.json",
        21,
    ),
]


def test_cloudformation_and_terraform_examples(scan):
    run = scan("examples/cloudformation", "examples/terraform", "--config", POLICY)
    assert sorted(run.findings()) == sorted(IAC_EXPECTED)
    suppressed = [(f["rule_id"], f["suppressed"]) for f in run.report["findings"] if f["suppressed"]]
    assert suppressed == [("IBD009", {"kind": "inline", "reason": "replaced by GoldenDistribution in Q3 (PLAT-881)"})]
    assert run.report["errors"] == []


def test_conditions_and_parameters_say_when_and_from_where(scan):
    """Each branch is audited; a finding under a condition or a default says so, and a
    parameters file fixes the branch (the unapproved default account is overridden)."""
    template = "examples/cloudformation/conditional-sharing.yaml"
    run = scan(template, "--config", POLICY)
    assert [f["message"] for f in run.report["findings"]] == [
        "target account 999988887777 is not in allowed-accounts "
        '(parameter ShareWith = ["111122223333", "999988887777"] (its Default))',
        "AMI distributed to us-east-1 is public (userGroups contains 'all'); remove it (when condition IsProd is true)",
        "AMI copies for target accounts in eu-west-1: no kmsKeyId; set a customer-managed KMS key "
        "(the owner account is unknown: declare it with owner-account) (when condition IsProd is true)",
        "AMI name 'golden-al2023-release' is the same for every build; add {{ imagebuilder:buildDate }} "
        "(parameter ImageName = 'golden-al2023' (its Default))",
    ]
    params = "examples/cloudformation/conditional-sharing.prod.json"
    prod = scan(template, "--config", POLICY, "--parameters", params)
    forced = f"condition IsProd is true: parameter Environment = 'prod' (from {params})"
    assert [(f["rule_id"], f["message"]) for f in prod.report["findings"]] == [
        ("IBD002", f"AMI distributed to us-east-1 is public (userGroups contains 'all'); remove it ({forced})"),
        (
            "IBD001",
            "AMI copies for target accounts in eu-west-1: no kmsKeyId; set a customer-managed KMS key "
            f"(the owner account is unknown: declare it with owner-account) ({forced})",
        ),
        (
            "IBD009",
            "AMI name 'golden-al2023-release' is the same for every build; add {{ imagebuilder:buildDate }} "
            "(parameter ImageName = 'golden-al2023' (its Default))",
        ),
    ]
    assert prod.report["errors"] == []
