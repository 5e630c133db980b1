"""The corpus as a precision test: every finding on ../shared/corpus is listed, reviewed
and true.

tests/corpus_findings.txt lists each finding (rule, file:line, canonical path) with a
verdict and a one-line reason. scripts/corpus_findings.py --check fails on a finding not
listed, on a listed finding that disappeared, and on any verdict but true-positive.
"""

from __future__ import annotations

import subprocess
import sys

from conftest import CORPUS, REPO, skip_or_fail


def test_every_corpus_finding_is_listed_and_true():
    if not CORPUS.is_dir():
        skip_or_fail(f"shared corpus not found at {CORPUS}")
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "corpus_findings.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_the_check_fails_on_a_new_a_missing_and_a_doubtful_finding(tmp_path):
    """The check itself can fail: fed a changed list, it names each difference."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import corpus_findings
    finally:
        sys.path.remove(str(REPO / "scripts"))
    listed = [
        "IBD001 | json/a.json:4 | /distributions | true-positive | kept",
        "IBD002 | json/a.json:9 | /distributions/0 | doubtful | why not",
        "IBD009 | json/b.json:3 | /distributions/0/amiDistributionConfiguration/name | true-positive | gone",
    ]
    now = [
        (("IBD001", "json/a.json:4", "/distributions"), "message"),
        (("IBD002", "json/a.json:9", "/distributions/0"), "message"),
        (("IBD017", "json/c.json:7", "/timeoutMinutes"), "new message"),
    ]
    assert corpus_findings.check(now, listed) == [
        "not in the expectations: IBD017 | json/c.json:7 | /timeoutMinutes",
        "listed but no longer reported: IBD009 | json/b.json:3 | /distributions/0/amiDistributionConfiguration/name",
        "verdict 'doubtful', not 'true-positive': IBD002 | json/a.json:9 | /distributions/0 | doubtful | why not",
    ]
    text = corpus_findings.render(now, listed)
    assert "IBD017 | json/c.json:7 | /timeoutMinutes | unreviewed | new message" in text
    assert "IBD001 | json/a.json:4 | /distributions | true-positive | kept" in text
