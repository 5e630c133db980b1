"""IBD026 ecr-repository-missing (needs AWS context)."""

from __future__ import annotations

from auditor.facts import FactKey
from auditor.model import Severity, Unresolved, join_pointer
from auditor.rule import Rule, Violation, model_doc

from ._context import api_doc, known, one_entry_per_reason, region_of
from ._walk import distributions


def _subjects(config, ctx):
    for pointer, dist in distributions(config):
        container = dist.get("containerDistributionConfiguration")
        repo = container.get("targetRepository") if isinstance(container, dict) else None
        if not isinstance(repo, dict) or repo.get("service") != "ECR":
            continue
        path = join_pointer(pointer, "containerDistributionConfiguration", "targetRepository", "repositoryName")
        name, region = repo.get("repositoryName"), region_of(dist, ctx)
        if isinstance(name, Unresolved):
            ctx.cannot_verify(path, "repositoryName is not a literal")
        elif isinstance(name, str) and name:
            if region is None or ctx.account is None:
                ctx.cannot_verify(path, "the account or region it goes to is unknown")
            else:
                yield path, FactKey("ecr-repository", ctx.account, region, name)


class EcrRepositoryMissing(Rule):
    """The ECR repository a container distribution pushes to must exist in its region.

    Needs AWS context (``ecr:DescribeRepositories``).

    Why:
      Image Builder pushes the container image to `targetRepository` in each
      distribution's Region; it does not create the repository, so a missing one fails
      the distribution after the build ("Create and update container image
      distribution settings", EC2 Image Builder User Guide; ECR repositories are
      regional).

    Example:
      {"region": "eu-west-1", "containerDistributionConfiguration":
        {"targetRepository": {"service": "ECR", "repositoryName": "golden/app"}}}
      where golden/app exists only in us-east-1

    Fix:
      Create the repository in every Region the configuration distributes to (or
      correct its name).
    """

    id = "IBD026"
    slug = "ecr-repository-missing"
    severity = Severity.MEDIUM
    summary = "ECR repository of a container distribution must exist in its region"
    tags = ("reliability", "container", "ecr", "aws-context")
    sources = (
        model_doc(
            "TargetContainerRepository.repositoryName",
            "The name of the container repository where the output container image is stored.",
        ),
        api_doc("ecr", "RepositoryNotFoundException", "The specified repository could not be found."),
    )
    facts = ("ecr-repository",)

    def requests(self, config, ctx):
        return [fact for _p, fact in _subjects(config, ctx)]

    @one_entry_per_reason
    def check(self, config, ctx):
        for path, fact_key in _subjects(config, ctx):
            ok, value = known(ctx, path, fact_key)
            if ok and value is None:
                yield Violation(
                    path,
                    f"ECR repository {fact_key.id} does not exist in account {fact_key.account}, {fact_key.region}",
                )
