"""Built-in file sources that import their module (and its parser: libyaml, tree-sitter)
only when a file may be of their kind.

A scan of saved API JSON never needs the CloudFormation or Terraform readers: each is
stood in for by a :class:`LazySource` whose ``sniff`` first asks a cheap question every
file of that kind answers yes to (the resource type named in the text, the file name),
and imports the real source only then. The real sources are registered through the
same hook (``auditor_add_file_sources``) and behave exactly as before once loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from auditor.hookspecs import hookimpl
from auditor.model import InputError


class LazyGroup:
    """The sources one module adds, created together on first need (they may share state,
    as the Terraform sources share their module reader)."""

    def __init__(self, module: str, eager: Callable[[Any], bool]) -> None:
        self.module = module
        self.eager = eager  # settings -> whether configure must read files now (their errors come first)
        self.settings: Any = None
        self._sources: list[Any] | None = None

    def create(self) -> list[Any]:
        """The real sources, created (not configured) once."""
        if self._sources is None:
            self._sources = list(importlib.import_module(self.module).auditor_add_file_sources())
        return self._sources

    def sources(self) -> list[Any]:
        if self._sources is None:
            self.create()
            if self.settings is not None:
                for source in self._sources:
                    configure = getattr(source, "configure", None)
                    if callable(configure):
                        configure(self.settings)  # nothing to read (not eager): no errors to lose
        return self._sources


class LazySource:
    """One source of a :class:`LazyGroup`; ``may_be(path, text)`` must hold for every file
    the real source accepts."""

    def __init__(self, group: LazyGroup, index: int, name: str, priority: int, may_be) -> None:
        self.group, self.index, self.name, self.priority, self.may_be = group, index, name, priority, may_be

    @property
    def real(self) -> Any:
        return self.group.sources()[self.index]

    def configure(self, settings: Any) -> list[InputError]:
        if self.group._sources is None:
            if not self.group.eager(settings):
                self.group.settings = settings  # configured when first needed
                return []
            # Created here but configured one by one, each by its own LazySource, so that
            # a shared reader (Terraform's modules) is not configured twice and every
            # error is returned once.
            self.group.create()
        self.group.settings = settings
        configure = getattr(self.real, "configure", None)
        return configure(settings) if callable(configure) else []

    def sniff(self, path: Path, text: str) -> bool:
        return self.may_be(path, text) and self.real.sniff(path, text)

    def load(self, path: Path, text: str, display: str):
        return self.real.load(path, text, display)


CFN_RESOURCE_TYPE = "AWS::ImageBuilder::DistributionConfiguration"
TF_RESOURCE_TYPE = "aws_imagebuilder_distribution_configuration"


class CloudFormationPlugin:
    """``ib-audit.sources.cloudformation``: templates, read by ``auditor.sources.cloudformation``."""

    @hookimpl
    def auditor_add_file_sources(self) -> list[LazySource]:
        group = LazyGroup("auditor.sources.cloudformation", lambda s: bool(getattr(s, "parameter_files", ())))
        return [LazySource(group, 0, "cloudformation", 50, lambda path, text: CFN_RESOURCE_TYPE in text)]


class TerraformPlugin:
    """``ib-audit.sources.terraform``: HCL, ``.tf.json``, plans and state, read by ``auditor.sources.terraform``."""

    @hookimpl
    def auditor_add_file_sources(self) -> list[LazySource]:
        group = LazyGroup("auditor.sources.terraform", lambda s: bool(getattr(s, "var_files", ())))
        return [
            LazySource(
                group, 0, "terraform", 60, lambda path, text: path.name.endswith(".tf") and TF_RESOURCE_TYPE in text
            ),
            LazySource(
                group,
                1,
                "terraform",
                45,
                lambda path, text: path.name.endswith(".tf.json") and TF_RESOURCE_TYPE in text,
            ),
            LazySource(group, 2, "terraform-plan", 40, lambda path, text: TF_RESOURCE_TYPE in text),
        ]


CLOUDFORMATION = CloudFormationPlugin()
TERRAFORM = TerraformPlugin()
