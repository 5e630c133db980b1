"""IBD012 s3-export-destination."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.model import Severity, join_pointer
from auditor.patterns import LazyPattern
from auditor.rule import Rule, Source, Violation, model_doc, option

from ._walk import distributions, is_unresolved

BUCKET_RE = LazyPattern(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
BAD_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BAD_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


@dataclass(frozen=True)
class Options:
    allowed_buckets: tuple[str, ...] = option((), "S3 buckets images may be exported to; empty: any.")


def bucket_problem(name: str) -> str | None:
    """Why a bucket name breaks S3's general-purpose naming rules, or None."""
    if not BUCKET_RE.match(name):
        return "must be 3-63 lowercase letters, digits, dots or hyphens, starting and ending alphanumeric"
    if ".." in name or ".-" in name or "-." in name:
        return "must not contain '..', '.-' or '-.'"
    if name.count(".") == 3 and name.replace(".", "").isdigit():  # only then is ipaddress worth importing
        import ipaddress

        try:
            ipaddress.IPv4Address(name)
            return "must not be formatted as an IP address"
        except ValueError:
            pass
    if name.startswith(BAD_PREFIXES) or name.endswith(BAD_SUFFIXES):
        return "uses a prefix or suffix reserved by S3"
    return None


class S3ExportDestination(Rule):
    """An S3 VM export needs a role, a valid bucket, and an approved destination.

    Why:
      The exported disk image is a full copy of the machine outside EC2. `roleName` and
      `s3Bucket` are required members of the export (the API rejects it without them),
      and a bucket name that breaks S3's naming rules cannot exist, so the export fails.
      Which buckets may receive images is policy: `allowed-buckets`, off while empty,
      because a bucket outside your approved list may be readable by people who should
      not have your images.

    Example:
      "s3ExportConfiguration": {"diskImageFormat": "VMDK", "s3Bucket": "My_Bucket"}

    Fix:
      Set `roleName` (a role VM Import/Export can assume) and a valid `s3Bucket` listed
      in the `allowed-buckets` option.
    """

    id = "IBD012"
    slug = "s3-export-destination"
    severity = Severity.MEDIUM
    summary = "S3 export must name a role and a valid, approved bucket"
    tags = ("security", "export", "s3")
    Options = Options
    sources = (
        model_doc(
            "S3ExportConfiguration.roleName",
            "The name of the role that grants VM Import/Export permission to export images to your S3 bucket.",
        ),
        model_doc(
            "S3ExportConfiguration.s3Bucket", "The S3 bucket in which to store the output disk images for your VM."
        ),
        Source(
            "Amazon S3 User Guide, General purpose bucket naming rules",
            "Bucket names must be between 3 (min) and 63 (max) characters long. Bucket names can consist only of "
            "lowercase letters, numbers, periods (.), and hyphens (-).",
        ),
    )

    def check(self, config, ctx):
        allowed = set(self.options.allowed_buckets)
        for dist_pointer, dist in distributions(config):
            export = dist.get("s3ExportConfiguration")
            if not isinstance(export, dict):
                continue
            pointer = join_pointer(dist_pointer, "s3ExportConfiguration")
            missing = [k for k in ("roleName", "s3Bucket") if k not in export]
            if missing:
                yield Violation(pointer, f"S3 export lacks {' and '.join(missing)}")
            bucket = export.get("s3Bucket")
            path = join_pointer(pointer, "s3Bucket")
            if is_unresolved(bucket):
                if allowed:
                    ctx.cannot_verify(path, "bucket is not a literal")
            elif isinstance(bucket, str):
                problem = bucket_problem(bucket)
                if problem:
                    yield Violation(path, f"bucket name {bucket!r} is invalid: {problem}")
                elif allowed and bucket not in allowed:
                    yield Violation(path, f"bucket {bucket} is not in allowed-buckets")
