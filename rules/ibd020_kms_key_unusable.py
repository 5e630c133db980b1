"""IBD020 kms-key-unusable (needs AWS context)."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.facts import FactKey
from auditor.model import Severity, Unresolved, join_pointer
from auditor.rule import Rule, RuleContext, Violation, model_doc

from ._context import api_doc, distribution_pointer, kms_key_fact, one_entry_per_reason, region_of
from ._walk import KMS_ARN_RE, ami_configs, is_aws_managed_key

STATE_WORDS = {
    "Disabled": "is disabled",
    "PendingDeletion": "is scheduled for deletion",
    "PendingReplicaDeletion": "is scheduled for deletion",
    "PendingImport": "has no key material yet (pending import)",
    "Unavailable": "is unavailable (its custom key store is disconnected)",
    "Creating": "is still being created",
    "Updating": "is being updated",
}


def key_subjects(config, ctx: RuleContext, kind: str) -> Iterator[tuple[str, str, str, str, FactKey, dict]]:
    """``(kmsKeyId pointer, distribution pointer, key as written, region, fact, AMI
    distribution)`` of every customer managed key; records why the others cannot be
    looked up."""
    for pointer, ami, dist in ami_configs(config):
        path = join_pointer(pointer, "kmsKeyId")
        key = ami.get("kmsKeyId")
        if key is None or (isinstance(key, str) and is_aws_managed_key(key)):
            continue  # no key (IBD001) or an AWS managed key (IBD001/IBD008): nothing of ours to look up
        if isinstance(key, Unresolved) or not isinstance(key, str):
            ctx.cannot_verify(path, "kmsKeyId is not a literal, so the key cannot be looked up")
            continue
        region = region_of(dist, ctx)
        if region is None:
            ctx.cannot_verify(path, "the distribution's region is not a literal")
            continue
        fact = kms_key_fact(kind, key, region, ctx.account)
        if fact is None:
            ctx.cannot_verify(path, "the account the configuration deploys into is unknown")
            continue
        yield path, distribution_pointer(pointer), key, region, fact, ami


class KmsKeyUnusable(Rule):
    """The KMS key of each AMI distribution must exist, be enabled, be a symmetric
    encryption key, and live in the distribution's region.

    Needs AWS context (``kms:DescribeKey``): it runs in live and organization scans and
    in file scans with ``--aws-context``.

    Why:
      Image Builder re-encrypts each regional AMI copy with the key that distribution
      names, hours into the pipeline, and the copy fails with "Given key ID is not
      accessible" when the key cannot be used. Amazon EBS encrypts only with symmetric
      encryption keys ("Requirements for Amazon EBS encryption", Amazon EBS User
      Guide); a key that is disabled, pending deletion or pending import cannot be used
      in cryptographic operations ("Key states of AWS KMS keys", AWS KMS Developer
      Guide); and KMS keys are regional: a key is usable only in its own Region, a
      multi-Region key through its replica in that Region ("Multi-Region keys in AWS
      KMS", and "Set up cross-account AMI distribution with Image Builder": create a
      KMS key in all Regions where you distribute your AMI).

    Example:
      {"region": "eu-west-1", "amiDistributionConfiguration":
        {"kmsKeyId": "alias/golden-ami"}}     # the alias points at a disabled key

    Fix:
      Enable the key (or cancel its deletion), use a symmetric encryption key
      (SYMMETRIC_DEFAULT), or name a key, or the multi-Region replica the message
      suggests, in the distribution's Region.
    """

    id = "IBD020"
    slug = "kms-key-unusable"
    severity = Severity.HIGH
    summary = "KMS key of an AMI distribution must exist, be enabled and symmetric, in that region"
    tags = ("reliability", "encryption", "kms", "aws-context")
    sources = (
        model_doc("CopyImage.KmsKeyId", "The specified KMS key must exist in the destination Region.", "ec2"),
        model_doc("CopyImage.KmsKeyId", "Amazon EBS does not support asymmetric KMS keys.", "ec2"),
        api_doc(
            "kms", "DisableKey", "This change temporarily prevents use of the KMS key for cryptographic operations."
        ),
    )
    facts = ("kms-key",)

    def requests(self, config, ctx):
        return [fact for *_, fact, _ami in key_subjects(config, ctx, "kms-key")]

    @one_entry_per_reason
    def check(self, config, ctx):
        for path, dist_pointer, key, region, fact_key, _ami in key_subjects(config, ctx, "kms-key"):
            fact = ctx.fact(fact_key)
            if not fact.known:
                ctx.cannot_verify(path, fact.error)
                ctx.note(dist_pointer, "KMS key", f"{key}: could not verify ({fact.error})")
                continue
            meta = fact.value
            if meta is None:
                where = f"account {fact_key.account}, {fact_key.region}"
                ctx.note(dist_pointer, "KMS key", f"{key}: does not exist ({where})")
                yield Violation(path, f"KMS key {key} does not exist in {where}")
                continue
            problems, summary = _problems(meta, region)
            ctx.note(dist_pointer, "KMS key", summary)
            if problems:
                yield Violation(path, f"KMS key {key} cannot encrypt the AMI copy in {region}: {'; '.join(problems)}")


def _problems(meta: dict, region: str) -> tuple[list[str], str]:
    """What stops the key being used in ``region``, and a one-line summary of its state."""
    problems = []
    state = meta.get("KeyState") or ("Enabled" if meta.get("Enabled") else "Disabled")
    if state != "Enabled":
        problems.append(f"it {STATE_WORDS.get(state, f'is in state {state}')}")
    # SYMMETRIC_DEFAULT keys can only be ENCRYPT_DECRYPT keys; the spec alone decides.
    spec = meta.get("KeySpec") or meta.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    usage = meta.get("KeyUsage") or "ENCRYPT_DECRYPT"
    if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
        problems.append(f"it is a {spec} key for {usage}; EBS needs a symmetric encryption key (SYMMETRIC_DEFAULT)")
    arn = str(meta.get("Arn") or "")
    match = KMS_ARN_RE.match(arn)
    key_region = match.group("region") if match else region
    multi = meta.get("MultiRegionConfiguration") or {}
    if key_region != region:
        copies = [multi.get("PrimaryKey"), *(multi.get("ReplicaKeys") or [])] if meta.get("MultiRegion") else []
        there = next((c.get("Arn") for c in copies if isinstance(c, dict) and c.get("Region") == region), None)
        if there:
            problems.append(f"it is in {key_region}; use its multi-Region replica in {region}: {there}")
        else:
            problems.append(f"it is in {key_region}, not {region}, and has no multi-Region replica there")
    kind = ""
    if meta.get("MultiRegion"):
        kind = f", multi-Region {str(multi.get('MultiRegionKeyType') or 'key').lower()}"
    return problems, f"{arn or meta.get('KeyId')}: {state}, {spec}{kind}"
