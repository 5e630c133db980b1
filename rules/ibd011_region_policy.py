"""IBD011 region-policy."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from auditor import regions
from auditor._api_model import BOTOCORE_VERSION
from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Source, Violation, model_doc, option

from ._walk import distributions, is_unresolved, items, text

ARN_PARTITION_RE = re.compile(r"^arn:(?P<partition>[^:]+):")


@dataclass(frozen=True)
class Options:
    allowed_regions: tuple[str, ...] = option((), "Regions images may be distributed to; empty: any.")
    extra_regions: tuple[str, ...] = option(
        (), "Region names to accept besides those botocore's data knows (a Region launched since)."
    )


class RegionPolicy(Rule):
    """Distributions must target real, allowed regions, each once, within one partition.

    Why:
      A Region can appear at most once in a configuration's distributions, and a region
      name that does not exist (`us-eest-1`) fails the distribution; names are checked
      against the partitions and Regions botocore ships (offline), with a did-you-mean.
      Partitions are hard boundaries: an AMI cannot be copied across them, and an ARN
      (KMS key, license configuration, organization or OU) from another partition than
      the distribution's region cannot be used there. Which regions are allowed at all
      is policy (data residency): `allowed-regions`, off while empty.

    Example:
      "distributions": [{"region": "us-east-1"}, {"region": "us-eest-1"}]

    Fix:
      Correct the region name (or list a Region newer than the data in `extra-regions`),
      keep one distribution per region, keep ARNs in the region's partition, and only
      use regions listed in `allowed-regions`.
    """

    id = "IBD011"
    slug = "region-policy"
    severity = Severity.MEDIUM
    summary = "Distributions must target real, allowed regions, each once, in one partition"
    tags = ("compliance", "regions")
    Options = Options
    sources = (
        model_doc(
            "CreateDistributionConfigurationRequest.distributions",
            "A Region can appear at most once in the list.",
        ),
        Source(f"botocore {BOTOCORE_VERSION} data/partitions.json", "partitions[].regions, partitions[].regionRegex"),
        model_doc("CopyImage", "Cross-partition copies (use CreateStoreImageTask instead)", "ec2"),
        Source(
            "AWS General Reference, Amazon Resource Names (ARNs)",
            "The partition in which the resource is located. A partition is a group of AWS Regions. Each AWS "
            "account is scoped to one partition.",
        ),
    )

    def check(self, config, ctx):
        allowed = set(self.options.allowed_regions)
        extra = set(self.options.extra_regions)
        seen: dict[str, str] = {}
        partitions: dict[str, list[tuple[str, str]]] = {}  # partition -> (region, path)
        for pointer, dist in distributions(config):
            region = dist.get("region")
            path = join_pointer(pointer, "region")
            if is_unresolved(region):
                if allowed:
                    ctx.cannot_verify(path, "region is not a literal")
                continue
            region = text(region)
            if region is None:
                continue
            problem = regions.problem(region, extra)
            if problem:
                yield Violation(path, problem)
            if allowed and region not in allowed:
                yield Violation(path, f"region {region} is not in allowed-regions")
            if region in seen:
                # A list position, 1-based, reads the same in every source format.
                first = int(seen[region].rsplit("/", 1)[-1]) + 1
                yield Violation(
                    path, f"region {region} is already the region of distribution #{first}; each region may appear once"
                )
            else:
                seen[region] = pointer
            partition = regions.partition_of(region)
            if partition is not None:
                partitions.setdefault(partition, []).append((region, path))
                yield from _foreign_arns(dist, pointer, region, partition)
        yield from _cross_partition(partitions, ctx)


def _foreign_arns(dist, pointer, region, partition):
    """ARNs in the distribution (KMS key, organizations, OUs, license configurations)
    from another partition than its region's."""
    ami = dist.get("amiDistributionConfiguration")
    found: list[tuple[str, Any]] = []
    if isinstance(ami, dict):
        base = f"{pointer}/amiDistributionConfiguration"
        key = ami.get("kmsKeyId")
        if isinstance(key, str) and key.startswith("arn:"):
            found.append((f"{base}/kmsKeyId", key))
        perm = ami.get("launchPermission")
        if isinstance(perm, dict):
            for member in ("organizationArns", "organizationalUnitArns"):
                found += items(perm, member, f"{base}/launchPermission")
    found += items(dist, "licenseConfigurationArns", pointer)
    for path, arn in found:
        match = ARN_PARTITION_RE.match(arn) if isinstance(arn, str) else None
        if match and match.group("partition") != partition:
            yield Violation(
                path,
                f"ARN is in partition {match.group('partition')} but {region} is in {partition}; "
                f"use one from the {partition} partition",
            )


def _cross_partition(partitions, ctx):
    own = regions.partition_of(ctx.region) if isinstance(ctx.region, str) else None
    if own is not None:
        for partition, found in partitions.items():
            for region, path in found if partition != own else ():
                yield Violation(
                    path,
                    f"region {region} is in partition {partition} but the configuration's own region "
                    f"{ctx.region} is in {own}: an AMI cannot be copied across partitions",
                )
    elif len(partitions) > 1:
        spread = "; ".join(f"{p}: {', '.join(r for r, _ in found)}" for p, found in sorted(partitions.items()))
        yield Violation(
            "/distributions",
            f"the regions span partitions ({spread}): an AMI cannot be copied across partitions",
        )
