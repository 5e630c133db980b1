"""Sending findings to Security Hub, against the local endpoint with Security Hub's limits.

Run:  python bench/bench_security_hub.py [--configs 600] [--latency 0.05] [--rate 10]

--configs public configurations over 3 regions (2 findings each) behind
tests/imagebuilder_server.py; tests/securityhub_server.py answers with --latency per call
and a token bucket of --rate requests/s per account and region (Security Hub's documented
BatchImportFindings limit: 10/s, burst 30). Measured in the same run, on the same findings:

- ib-audit's sink (first run: all new; second run: all unchanged, so every finding is
  read back with GetFindings and updated);
- a plain boto3 loop, batches of 100, one region after another, botocore's "standard"
  retry mode (what a hand-written importer does);
- one finding per BatchImportFindings call (on the first 200 findings), same retries.

Prints wall time, findings per second, calls, throttled calls and findings lost.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from imagebuilder_server import Faults as ImageBuilderFaults  # noqa: E402
from imagebuilder_server import ImageBuilderServer  # noqa: E402
from securityhub_server import Faults, SecurityHubServer  # noqa: E402

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
ACCOUNT = "111122223333"


def _result(configs: int):
    """Scan the configurations once (Image Builder without limits) into an AuditResult."""
    from auditor.config import load_settings
    from auditor.engine import audit, configure_rules
    from auditor.plugins import PluginHost
    from auditor.sources import aws

    images = ImageBuilderServer(ImageBuilderFaults(page_size=100))
    public = json.loads((REPO / "examples" / "public-ami.json").read_text())["distributionConfiguration"]
    for i in range(configs):
        region = REGIONS[i % len(REGIONS)]
        images.add(region, {**{k: v for k, v in public.items() if k != "arn"}, "name": f"cfg-{i:05}"})
    os.environ["AWS_ENDPOINT_URL_IMAGEBUILDER"] = images.start()
    try:
        host = PluginHost(load_entry_points=False)
        with tempfile.TemporaryDirectory() as empty:
            cwd = os.getcwd()
            os.chdir(empty)  # no .ib-audit.toml found upwards of here
            try:
                settings = load_settings(None, [r for _, r in host.rules()])
            finally:
                os.chdir(cwd)
        fetched = aws.fetch(aws.AwsOptions(regions=list(REGIONS)))
        return audit(host, configure_rules(host, settings), fetched.targets, fetched.errors, settings)
    finally:
        images.stop()


def _hub(latency: float, rate: float) -> SecurityHubServer:
    server = SecurityHubServer(Faults(latency=latency, rate_limit=rate, burst=30))
    os.environ["AWS_ENDPOINT_URL_SECURITYHUB"] = server.start()
    return server


def _row(name: str, wall: float, sent: int, server: SecurityHubServer, expected: int) -> dict:
    held = sum(len(server.stored(ACCOUNT, r)) for r in REGIONS)
    return {
        "name": name,
        "wall": wall,
        "per_s": sent / wall,
        "calls": sum(server.statuses.values()),
        "throttled": server.statuses.get(429, 0),
        "lost": expected - held,
    }


def run_sink(result, latency: float, rate: float) -> list[dict]:
    from auditor.sinks import SinkContext
    from auditor.sinks.securityhub import send
    from auditor.sources.aws import AwsOptions

    server = _hub(latency, rate)
    rows = []
    try:
        for label in ("ib-audit --security-hub, first run", "ib-audit --security-hub, unchanged rerun"):
            before = dict(server.statuses)
            start = time.perf_counter()
            report = send(result, SinkContext(aws=AwsOptions()))
            wall = time.perf_counter() - start
            row = _row(label, wall, len(result.findings), server, len(result.findings))
            row["calls"] -= sum(before.values())
            row["throttled"] -= before.get(429, 0)
            row["errors"] = len(report.errors)
            rows.append(row)
    finally:
        server.stop()
    return rows


def run_boto3(findings: list[dict], latency: float, rate: float, batch: int, label: str) -> dict:
    import boto3
    import botocore.config

    server = _hub(latency, rate)
    config = botocore.config.Config(retries={"mode": "standard"})
    try:
        start = time.perf_counter()
        for region in REGIONS:
            client = boto3.client("securityhub", region_name=region, config=config)
            mine = [f for f in findings if f["Resources"][0]["Region"] == region]
            for i in range(0, len(mine), batch):
                # Throttled past botocore's retries: those findings are lost (counted below).
                with contextlib.suppress(client.exceptions.ClientError):
                    client.batch_import_findings(Findings=mine[i : i + batch])
        wall = time.perf_counter() - start
        return _row(label, wall, len(findings), server, len(findings))
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=600)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rate", type=float, default=10.0)
    args = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="AKIDBENCH",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    from auditor.reports import asff

    result = _result(args.configs)
    findings, _ = asff.build_all(result, asff.timestamp())
    print(
        f"{len(findings)} findings from {args.configs} configurations in {len(REGIONS)} regions; "
        f"{args.latency * 1000:.0f} ms latency, {args.rate:.0f} req/s per account and region (burst 30)"
    )
    rows = run_sink(result, args.latency, args.rate)
    rows.append(run_boto3(findings, args.latency, args.rate, 100, "boto3 loop, batches of 100, standard retries"))
    rows.append(run_boto3(findings[:200], args.latency, args.rate, 1, "boto3, one finding per call (200 findings)"))
    base = rows[0]["per_s"]
    for r in rows:
        print(
            f"  {r['name']}: {r['wall']:.1f} s, {r['per_s']:.0f} findings/s ({r['per_s'] / base:.2f}x the sink), "
            f"{r['calls']} calls, {r['throttled']} throttled, {r['lost']} lost"
            + (f", {r['errors']} errors" if r.get("errors") else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
