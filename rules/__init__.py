"""The built-in rule pack: one module per rule, registered like any third-party pack."""

from __future__ import annotations

from auditor.hookspecs import hookimpl

from .ibd001_ami_kms_key_required import AmiKmsKeyRequired
from .ibd002_ami_public_launch_permission import AmiPublicLaunchPermission
from .ibd003_fast_launch_bounds import FastLaunchBounds
from .ibd004_s3_export_disk_format import S3ExportDiskFormat
from .ibd005_kms_key_region_mismatch import KmsKeyRegionMismatch
from .ibd006_unapproved_account import UnapprovedAccount
from .ibd007_unapproved_organization import UnapprovedOrganization
from .ibd008_shared_ami_needs_cmk import SharedAmiNeedsCmk
from .ibd009_ami_name_not_unique import AmiNameNotUnique
from .ibd010_required_tags import RequiredTags
from .ibd011_region_policy import RegionPolicy
from .ibd012_s3_export_destination import S3ExportDestination
from .ibd013_container_target import ContainerTarget
from .ibd014_distribution_timeout import DistributionTimeout
from .ibd015_launch_template_default_cross_account import LaunchTemplateDefaultCrossAccount
from .ibd016_unknown_member import UnknownMember
from .ibd017_api_constraints import ApiConstraints
from .ibd020_kms_key_unusable import KmsKeyUnusable
from .ibd021_kms_key_not_shared import KmsKeyNotShared
from .ibd022_target_account_not_ready import TargetAccountNotReady
from .ibd023_public_sharing_blocked import PublicSharingBlocked
from .ibd024_launch_template_missing import LaunchTemplateMissing
from .ibd025_s3_export_target_missing import S3ExportTargetMissing
from .ibd026_ecr_repository_missing import EcrRepositoryMissing
from .ibd027_shared_outside_organization import SharedOutsideOrganization

# Every built-in id, IBD014 included: it is retired (a stub that never runs) so that the
# id stays reserved and a config naming it gets a warning instead of "unknown rule".
BUILTIN_RULES = (
    AmiKmsKeyRequired,
    AmiPublicLaunchPermission,
    FastLaunchBounds,
    S3ExportDiskFormat,
    KmsKeyRegionMismatch,
    UnapprovedAccount,
    UnapprovedOrganization,
    SharedAmiNeedsCmk,
    AmiNameNotUnique,
    RequiredTags,
    RegionPolicy,
    S3ExportDestination,
    ContainerTarget,
    DistributionTimeout,
    LaunchTemplateDefaultCrossAccount,
    UnknownMember,
    ApiConstraints,
    # Account-context checks: they run only in scans with AWS access (Rule.facts).
    KmsKeyUnusable,
    KmsKeyNotShared,
    TargetAccountNotReady,
    PublicSharingBlocked,
    LaunchTemplateMissing,
    S3ExportTargetMissing,
    EcrRepositoryMissing,
    SharedOutsideOrganization,
)


@hookimpl
def auditor_add_rules():
    return list(BUILTIN_RULES)
