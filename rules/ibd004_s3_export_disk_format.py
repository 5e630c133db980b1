"""IBD004 s3-export-disk-format."""

from __future__ import annotations

from dataclasses import dataclass

from auditor import apimodel
from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Violation, model_doc, option

from ._walk import distributions, is_unresolved

API_FORMATS = tuple(apimodel.enum("DiskImageFormat"))


@dataclass(frozen=True)
class Options:
    allowed_formats: tuple[str, ...] = option(("VMDK", "VHD", "RAW"), "Disk image formats allowed for S3 export.")


class S3ExportDiskFormat(Rule):
    """An S3 VM export must use an allowed disk image format.

    Why:
      A value outside the API's enum (VMDK, VHD, RAW) is rejected by the API. Which of
      the valid formats to allow is policy: `s3ExportConfiguration` exports every build
      as a disk image to S3, outside EC2's access controls, and organisations usually
      allow only the format their hypervisor imports (`allowed-formats`, default: all
      three).

    Example:
      "s3ExportConfiguration": {"diskImageFormat": "QCOW2", ...}

    Fix:
      Use one of the formats in the `allowed-formats` option (default: all three valid
      values), or remove the export.
    """

    id = "IBD004"
    slug = "s3-export-disk-format"
    severity = Severity.MEDIUM
    summary = "S3 VM export must use an allowed disk image format"
    tags = ("compliance", "export")
    Options = Options
    sources = (
        model_doc(
            "S3ExportConfiguration.diskImageFormat",
            "Export the updated image to one of the following supported disk image formats:",
        ),
    )

    def check(self, config, ctx):
        allowed = set(self.options.allowed_formats)
        for pointer, dist in distributions(config):
            export = dist.get("s3ExportConfiguration")
            if not isinstance(export, dict) or "diskImageFormat" not in export:
                continue
            fmt = export["diskImageFormat"]
            path = join_pointer(pointer, "s3ExportConfiguration", "diskImageFormat")
            if is_unresolved(fmt):
                ctx.cannot_verify(path, "disk image format is not a literal")
            elif fmt not in API_FORMATS:
                hint = apimodel.suggest(str(fmt), list(API_FORMATS))
                did_you_mean = f"; did you mean {hint!r}?" if hint else f"; use one of {', '.join(API_FORMATS)}"
                yield Violation(path, f"diskImageFormat {fmt!r} is not valid{did_you_mean}")
            elif fmt not in allowed:
                yield Violation(path, f"diskImageFormat {fmt!r} is not allowed; allowed: {', '.join(sorted(allowed))}")
