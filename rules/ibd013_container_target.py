"""IBD013 container-target."""

from __future__ import annotations

import re
from dataclasses import dataclass

from auditor import apimodel
from auditor.model import Severity, join_pointer
from auditor.patterns import LazyPattern
from auditor.rule import Rule, Violation, model_doc, option

from ._walk import distributions, is_unresolved

SERVICES = tuple(apimodel.enum("ContainerRepositoryService"))
# A registry host written into the repository name: an ECR registry
# (123456789012.dkr.ecr.us-east-1.amazonaws.com/..., public.ecr.aws/...), a URL, or a
# host with a port. ECR repository names cannot contain ":" at all.
REGISTRY_HOST_RE = LazyPattern(
    r"^(?:[a-z][a-z0-9+.-]*://|[0-9]{12}\.dkr\.ecr(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/|public\.ecr\.aws/"
    r"|[^/]*:[0-9]+/)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Options:
    require_container_tags: bool = option(True, "Report a container distribution without containerTags (low).")


class ContainerTarget(Rule):
    """A container distribution must push to an ECR repository named without its registry host.

    Why:
      Image Builder pushes container images only to Amazon ECR (`service` has the
      single value `ECR`), and `repositoryName` is the repository name only: a namespace
      path such as `team-a/my-repo` is allowed, the registry hostname is not, so
      `123456789012.dkr.ecr.us-east-1.amazonaws.com/app` fails the distribution.
      Setting `containerTags` is a practice, not an API rule (low): they are the
      repository image tags Image Builder applies, the ones deployments that pull a
      named tag (`latest`, a release name) follow.

    Example:
      "containerDistributionConfiguration": {"targetRepository":
        {"service": "ECR", "repositoryName": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app"}}

    Fix:
      Set `targetRepository.service` to "ECR", give `repositoryName` without the
      registry host ("app"), and list the tags to apply in `containerTags`.
    """

    id = "IBD013"
    slug = "container-target"
    severity = Severity.MEDIUM
    summary = "Container distributions must target an ECR repository by name, with containerTags"
    tags = ("reliability", "containers")
    Options = Options
    sources = (
        model_doc(
            "TargetContainerRepository.repositoryName",
            "Provide the repository name only (a namespace path such as team-a/my-repo is allowed, but not the "
            "registry hostname).",
        ),
        model_doc("ContainerRepositoryService", "ECR"),
        model_doc(
            "ContainerDistributionConfiguration.containerTags",
            "Tags that Image Builder applies to the distributed container image in the target repository. These "
            "are repository image tags, not resource tags.",
        ),
    )

    def check(self, config, ctx):
        for dist_pointer, dist in distributions(config):
            container = dist.get("containerDistributionConfiguration")
            if not isinstance(container, dict):
                continue
            pointer = join_pointer(dist_pointer, "containerDistributionConfiguration")
            repo = container.get("targetRepository")
            if repo is None:
                yield Violation(pointer, "container distribution has no targetRepository")
            elif isinstance(repo, dict):
                yield from _repository(repo, join_pointer(pointer, "targetRepository"), ctx)
            tags = container.get("containerTags")
            if self.options.require_container_tags and not is_unresolved(tags) and not tags:
                yield Violation(
                    pointer,
                    "container distribution sets no containerTags: deployments that pull a named tag do not "
                    "get the new image",
                    severity=Severity.LOW,
                )


def _repository(repo, pointer, ctx):
    service = repo.get("service")
    path = join_pointer(pointer, "service")
    if is_unresolved(service):
        ctx.cannot_verify(path, "repository service is not a literal")
    elif service not in SERVICES:
        hint = apimodel.suggest(str(service), list(SERVICES)) if isinstance(service, str) else None
        did_you_mean = f"; did you mean {hint!r}?" if hint and hint != service else ""
        yield Violation(
            pointer if service is None else path,
            f"container repository service is {service!r}; only {' or '.join(map(repr, SERVICES))} is supported"
            f"{did_you_mean}",
        )
    name = repo.get("repositoryName")
    if isinstance(name, str) and REGISTRY_HOST_RE.match(name):
        yield Violation(
            join_pointer(pointer, "repositoryName"),
            f"repositoryName {name!r} includes the registry host; give the repository name only",
        )
