"""IBD025 s3-export-target-missing (needs AWS context)."""

from __future__ import annotations

from auditor.facts import FactKey
from auditor.model import Severity, Unresolved, join_pointer
from auditor.rule import Rule, Violation, model_doc

from ._context import api_doc, known, one_entry_per_reason
from ._walk import distributions


def _subjects(config, ctx):
    """``(pointer, fact)`` for the export bucket and role of every S3 export."""
    for pointer, dist in distributions(config):
        export = dist.get("s3ExportConfiguration")
        if not isinstance(export, dict):
            continue
        export_pointer = join_pointer(pointer, "s3ExportConfiguration")
        for member, kind in (("s3Bucket", "s3-bucket"), ("roleName", "iam-role")):
            value, path = export.get(member), join_pointer(export_pointer, member)
            if isinstance(value, Unresolved):
                ctx.cannot_verify(path, f"{member} is not a literal")
            elif isinstance(value, str) and value:
                if ctx.account is None:
                    ctx.cannot_verify(path, "the account the configuration deploys into is unknown")
                else:
                    yield path, FactKey(kind, ctx.account, "", value)


class S3ExportTargetMissing(Rule):
    """The S3 export's bucket must exist and belong to the account; its role must exist.

    Needs AWS context (``s3:ListBucket`` through HeadBucket, ``iam:GetRole``).

    Why:
      Image Builder exports the disk image with VM Import/Export, assuming `roleName`
      in the building account and writing to `s3Bucket`. A bucket that does not exist
      or a role that is missing fails the export after the build. A bucket that exists
      but belongs to another account is worse: the image of your machine, secrets and
      all, is written to someone else's storage. The bucket is checked with
      `ExpectedBucketOwner`, which S3 answers with 403 when the owner differs
      ("Verifying bucket ownership with bucket owner condition", Amazon S3 User Guide).

    Example:
      "s3ExportConfiguration": {"roleName": "vmimport", "diskImageFormat": "VMDK",
                                "s3Bucket": "golden-images-export"}
      where golden-images-export belongs to another account

    Fix:
      Create the bucket in the account that runs the pipeline (or correct its name),
      and create the export role ("Required service role" in the VM Import/Export
      User Guide, usually `vmimport`).
    """

    id = "IBD025"
    slug = "s3-export-target-missing"
    severity = Severity.HIGH
    summary = "S3 export bucket must exist in the account, and its role must exist"
    tags = ("security", "reliability", "s3", "export", "aws-context")
    sources = (
        model_doc(
            "S3ExportConfiguration.roleName",
            "The name of the role that grants VM Import/Export permission to export images to your S3 bucket.",
        ),
        api_doc(
            "s3",
            "HeadBucket.ExpectedBucketOwner",
            "If the account ID that you provide does not match the actual owner of the bucket, the request fails with "
            "the HTTP status code 403 Forbidden (access denied).",
        ),
    )
    facts = ("s3-bucket", "iam-role")

    def requests(self, config, ctx):
        return [fact for _p, fact in _subjects(config, ctx)]

    @one_entry_per_reason
    def check(self, config, ctx):
        for path, fact_key in _subjects(config, ctx):
            ok, value = known(ctx, path, fact_key)
            if not ok:
                continue
            if fact_key.kind == "iam-role":
                if value is None:
                    yield Violation(path, f"role {fact_key.id} does not exist in account {fact_key.account}")
            elif value == "missing":
                yield Violation(path, f"S3 bucket {fact_key.id} does not exist")
            elif value == "other-owner":
                yield Violation(
                    path,
                    f"S3 bucket {fact_key.id} belongs to another account, not {fact_key.account}: "
                    "the exported image would leave the account",
                )
