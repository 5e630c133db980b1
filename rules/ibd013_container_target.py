"""IBD013 container-target."""

from __future__ import annotations

from auditor.model import Severity, join_pointer
from auditor.rule import Rule, Violation

from ._walk import distributions, is_unresolved


class ContainerTarget(Rule):
    """A container distribution must push to ECR with explicit tags.

    Why:
      Image Builder can only push container images to Amazon ECR; any other service
      fails the distribution. Without `containerTags`, the pushed image carries only
      Image Builder's version tag, so deployments that pull a named tag (`latest`, a
      release name) keep running the old image.

    Example:
      "containerDistributionConfiguration": {"targetRepository":
        {"service": "DOCKERHUB", "repositoryName": "app"}}

    Fix:
      Set `targetRepository.service` to "ECR" and list the tags to apply in
      `containerTags`.
    """

    id = "IBD013"
    slug = "container-target"
    severity = Severity.MEDIUM
    summary = "Container distributions must target ECR and set containerTags"
    tags = ("reliability", "containers")

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
                service = repo.get("service")
                path = join_pointer(pointer, "targetRepository", "service")
                if is_unresolved(service):
                    ctx.cannot_verify(path, "repository service is not a literal")
                elif service != "ECR":
                    yield Violation(
                        join_pointer(pointer, "targetRepository") if service is None else path,
                        f"container repository service is {service!r}; only 'ECR' is supported",
                    )
            tags = container.get("containerTags")
            if not is_unresolved(tags) and not tags:
                yield Violation(pointer, "container distribution sets no containerTags")
