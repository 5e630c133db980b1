"""Live scan throughput against the local Image Builder endpoint.

Run:  python bench/bench_live.py [--configs 1000] [--latency 0.05] [--rate 100]

1,000 configurations over 3 regions behind tests/imagebuilder_server.py with 50 ms
latency per call and a 100 requests/s token bucket (burst 10). Prints wall time,
achieved requests/s as a fraction of the limit, throttled calls, configurations lost,
for the default worker count and for --max-workers 1, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from imagebuilder_server import Faults, ImageBuilderServer  # noqa: E402

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")


def run(configs: int, latency: float, rate: float, workers: int) -> dict:
    from auditor.sources import aws

    server = ImageBuilderServer(Faults(latency=latency, rate_limit=rate, burst=10, page_size=100))
    for i in range(configs):
        region = REGIONS[i % len(REGIONS)]
        server.add(region, {"name": f"cfg-{i:05}", "distributions": [{"region": region}], "timeoutMinutes": 360})
    url = server.start()
    os.environ.update(
        AWS_ENDPOINT_URL_IMAGEBUILDER=url,
        AWS_ACCESS_KEY_ID="AKIDBENCH",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    try:
        start = time.perf_counter()
        result = aws.fetch(aws.AwsOptions(regions=list(REGIONS), max_workers=workers))
        wall = time.perf_counter() - start
    finally:
        server.stop()
    calls = sum(server.status_counts.values())
    ok = sum(n for status, n in server.status_counts.items() if status == 200)
    audited = sum(1 for t in result.targets if t.error is None)
    return {
        "workers": workers,
        "wall": wall,
        "requests": calls,
        "ok_per_s": ok / wall,
        "fraction": ok / wall / rate if rate else 0.0,
        "throttled": server.status_counts.get(429, 0),
        "audited": audited,
        "lost": configs - audited,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    print(
        f"{args.configs} configurations over {len(REGIONS)} regions, {args.latency * 1000:.0f} ms latency, "
        f"{args.rate:.0f} req/s token bucket"
    )
    rows = [run(args.configs, args.latency, args.rate, w) for w in (args.workers, 1)]
    for r in rows:
        print(
            f"  --max-workers {r['workers']}: wall {r['wall']:.1f} s, {r['requests']} requests, "
            f"{r['ok_per_s']:.1f} successful req/s = {r['fraction']:.0%} of the limit, "
            f"{r['throttled']} throttled, {r['audited']} audited, {r['lost']} lost"
        )
    fast, slow = rows
    verdict = "met" if fast["fraction"] >= 0.85 and fast["lost"] == 0 else "MISSED"
    print(
        f"  speed-up of {fast['workers']} workers over 1: {slow['wall'] / fast['wall']:.1f}x; "
        f"target >= 85% of the limit with 0 lost: {verdict}"
    )
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
