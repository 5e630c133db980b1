"""The CloudFormation property table matches the registry schema cfn-lint ships, and the
offline scan reads it without cfn-lint."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from conftest import EXAMPLES, REPO, skip_or_fail


def test_generated_cfn_schema_is_current():
    if importlib.util.find_spec("cfnlint") is None:
        skip_or_fail("cfn-lint is not installed (pip install -e '.[test]')")
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_cfn_schema.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_table_pairs_each_cloudformation_property_with_its_api_member():
    from auditor._cfn_schema import PROPERTIES, READ_ONLY_PROPERTIES

    # The names that differ from the API's and the members CloudFormation lacks, read off
    # the CloudFormation user guide's AWS::ImageBuilder::DistributionConfiguration pages.
    assert PROPERTIES["AmiDistributionConfiguration"]["LaunchPermissionConfiguration"] == ("launchPermission", "object")
    assert "LaunchPermission" not in PROPERTIES["AmiDistributionConfiguration"]
    assert "S3ExportConfiguration" not in PROPERTIES["Distribution"]
    assert "TimeoutMinutes" not in PROPERTIES["DistributionConfiguration"]
    assert READ_ONLY_PROPERTIES == ["Arn"]
    assert "Arn" not in PROPERTIES["DistributionConfiguration"]


def test_offline_scan_never_imports_cfn_lint():
    code = (
        "import sys\n"
        "from auditor.cli import main\n"
        f"main(['scan', {str(EXAMPLES)!r}, '-f', 'json=/dev/null'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cfnlint'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=EXAMPLES)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
