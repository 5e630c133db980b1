"""Account-context checks: calls made and wall time against the same live scan without them.

Run:  python bench/bench_context.py [--configs 1000] [--keys 10] [--latency 0.05]

1,000 configurations in 3 regions behind tests/imagebuilder_server.py share 10 KMS keys
(moto in server mode behind tests/aws_front.py, both with --latency per call). Each
configuration copies its AMI to another account and reaches an organization member, so
IBD020-IBD027 need the keys, their policies, block public access per region and the
organization's members. The same `ib-audit scan --aws` runs, in this run, with and
without `--no-aws-context` (alternating, --repeat times each); printed: the context
calls made against the distinct facts (target: one call per fact) and the wall-time
ratio (target: under 1.5x).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
ACCOUNT = "123456789012"  # moto's default account
USE = ["kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"]


def setup(configs: int, keys: int, latency: float):
    import boto3
    from aws_front import AwsFront
    from imagebuilder_server import Faults, ImageBuilderServer
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST")).read()
    front = AwsFront(f"http://{host}:{port}", default_account=ACCOUNT)
    os.environ.update(
        AWS_ACCESS_KEY_ID="AKIDBENCH",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL=front.start(),
    )
    org = boto3.client("organizations", region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    members = [
        org.create_account(Email=f"m{i}@example.invalid", AccountName=f"m{i}")["CreateAccountStatus"]["AccountId"]
        for i in range(2)
    ]
    statement = {"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{m}:root" for m in members]}}
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {**statement, "Action": USE, "Resource": "*"},
        ],
    }
    key_regions = []
    for k in range(keys):
        region = REGIONS[k % len(REGIONS)]
        kms = boto3.client("kms", region_name=region)
        key_id = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=f"alias/bench-{k}", TargetKeyId=key_id)
        key_regions.append(region)
    server = ImageBuilderServer(Faults(latency=latency, page_size=100), default_account=ACCOUNT)
    for i in range(configs):
        k = i % keys
        region = key_regions[k]
        ami = {
            "name": "bench-{{ imagebuilder:buildDate }}",
            "kmsKeyId": f"alias/bench-{k}",
            "targetAccountIds": [members[i % 2]],
            "launchPermission": {"userIds": [members[(i + 1) % 2]]},
        }
        server.add(
            region, {"name": f"cfg-{i:05}", "distributions": [{"region": region, "amiDistributionConfiguration": ami}]}
        )
    os.environ["AWS_ENDPOINT_URL_IMAGEBUILDER"] = server.start()
    front.latency = latency
    distinct = keys * 2 + len(REGIONS) + 2  # DescribeKey and GetKeyPolicy per key, BPA per region, the organization
    return moto, front, server, distinct


def scan(out: Path, *extra: str) -> float:
    cmd = [str(Path(sys.executable).with_name("ib-audit")), "scan", "--aws", "--region", ",".join(REGIONS)]
    start = time.perf_counter()
    subprocess.run(
        [*cmd, *extra, "-f", f"json={out}", "--fail-on", "never", "-q"], check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    moto, front, server, distinct = setup(args.configs, args.keys, args.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            walls: dict[str, list[float]] = {"without": [], "with": []}
            calls = []
            for _ in range(args.repeat):
                walls["without"].append(scan(Path(tmp, "without.json"), "--no-aws-context"))
                front.calls.clear()
                walls["with"].append(scan(Path(tmp, "with.json")))
                calls.append(sum(front.calls.values()))
            report = json.loads(Path(tmp, "with.json").read_text())
            by_operation = sorted({op for _acct, op in front.calls})
    finally:
        server.stop()
        front.stop()
        moto.stop()
    without, with_ = statistics.median(walls["without"]), statistics.median(walls["with"])
    audited = report["summary"]["audited"]
    findings = {f["rule_id"] for f in report["findings"] if f["rule_id"].startswith("IBD02")}
    print(
        f"{args.configs} configurations in {len(REGIONS)} regions sharing {args.keys} keys, "
        f"{args.latency * 1000:.0f} ms per call; median of {args.repeat} runs each"
    )
    print(f"  without context: wall {without:.2f} s  ({', '.join(f'{w:.2f}' for w in walls['without'])})")
    print(f"  with context:    wall {with_:.2f} s  ({', '.join(f'{w:.2f}' for w in walls['with'])})")
    print(f"  context calls per run: {calls} for {distinct} distinct facts ({', '.join(by_operation)})")
    unverified = len(report["unverified"])
    print(f"  {audited} audited, context findings: {sorted(findings) or 'none'}, could not verify: {unverified}")
    ratio = with_ / without
    verdict = "met" if ratio < 1.5 and all(c == distinct for c in calls) else "MISSED"
    print(f"  wall-time ratio {ratio:.2f}x; targets one call per fact and < 1.5x: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
