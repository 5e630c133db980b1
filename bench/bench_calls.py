"""What one guarded API call costs: call_api against a plain boto3 call, same run.

Run:  python bench/bench_calls.py [--calls 2000]

call_api checks each response body before botocore parses it and runs every attempt
under one overall deadline (a short-lived thread per attempt). This times N
GetDistributionConfiguration calls against the local test endpoint (no latency, no
throttling, so only client-side cost shows), one after another, with a plain boto3
client and with make_client + call_api, and prints wall time and this process's CPU
time per call (the server runs in the same process, so CPU includes its share; the
difference between the two lines is what call_api adds) and their ratios.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from imagebuilder_server import ImageBuilderServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    import boto3
    import botocore.config

    from auditor.sources import aws

    server = ImageBuilderServer()
    arn = server.add("us-east-1", {"name": "bench", "distributions": [{"region": "us-east-1"}]})
    os.environ.update(
        AWS_ENDPOINT_URL_IMAGEBUILDER=server.start(),
        AWS_ACCESS_KEY_ID="AKIDBENCH",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    session = boto3.session.Session()
    plain = session.client(
        "imagebuilder", region_name="us-east-1", config=botocore.config.Config(retries={"total_max_attempts": 1})
    )
    guarded = aws.make_client(session, "imagebuilder", "us-east-1")
    runs = {
        "plain boto3 call": lambda: plain.get_distribution_configuration(distributionConfigurationArn=arn),
        "call_api (body check + deadline)": lambda: aws.call_api(
            guarded, "get_distribution_configuration", distributionConfigurationArn=arn
        ),
    }
    times = {}
    for name, call in runs.items():
        call()  # warm: connection, model loading
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.calls):
            call()
        times[name] = ((time.perf_counter() - wall) / args.calls, (time.process_time() - cpu) / args.calls)
    server.stop()
    base_wall, base_cpu = times["plain boto3 call"]
    for name, (wall, cpu) in times.items():
        shown_wall = f"wall {wall * 1e6:7.0f} µs ({wall / base_wall:4.2f}x)"
        print(f"{name:<34} {shown_wall}   cpu {cpu * 1e6:6.0f} µs ({cpu / base_cpu:4.2f}x)")


if __name__ == "__main__":
    main()
