"""The generated API shape table matches botocore's service model."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_generated_model_is_current():
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_api_model.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_member_names_match_botocore():
    import botocore.session

    from auditor import apimodel

    model = botocore.session.get_session().get_service_model("imagebuilder")
    for shape in (
        "DistributionConfiguration",
        "Distribution",
        "AmiDistributionConfiguration",
        "FastLaunchConfiguration",
    ):
        assert sorted(apimodel.members(shape)) == sorted(model.shape_for(shape).members)
