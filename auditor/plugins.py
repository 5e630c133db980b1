"""A small wrapper around pluggy's PluginManager, built fresh for every run.

Callers ask the host for rules, sources and reporters; they never call ``pm.hook``.
Each hook implementation is called in its own guard, so one broken plugin becomes a
reported error naming it while every other plugin's contribution is kept.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from auditor import hookspecs
from auditor.model import Finding, InputError, Suppression, Target

ENTRY_POINT_GROUP = "ib_audit"
HOOK_PREFIX = "auditor_"  # every hook in auditor.hookspecs

# Built-ins are registered by the same call an entry point's plugin goes through.
BUILTIN_PLUGINS = (
    ("ib-audit.sources.json", "auditor.sources.jsonfile"),
    # Stand-ins that import the CloudFormation and Terraform readers (libyaml, tree-sitter)
    # only for a file that may be theirs (auditor.sources.lazy).
    ("ib-audit.sources.cloudformation", "auditor.sources.lazy:CLOUDFORMATION"),
    ("ib-audit.sources.terraform", "auditor.sources.lazy:TERRAFORM"),
    ("ib-audit.rules", "auditor.rules"),
    ("ib-audit.reports", "auditor.reports"),
)
# Built-ins a scan of files never calls: their module loads when the hook is first called.
DEFERRED_BUILTIN_PLUGINS = (
    ("ib-audit.sinks", "auditor.sinks", ("auditor_add_sinks",)),
    ("ib-audit.context", "auditor.context.providers", ("auditor_add_fact_providers",)),
)


def may_have_entry_points(group: str) -> bool:
    """Whether an installed distribution may declare entry points in ``group``.

    False only when every ``sys.path`` entry is a plain directory whose installed
    distributions' ``entry_points.txt`` files, read as bytes, never name the group, and
    nothing but the standard path finder can list distributions. Anything else (a zip on
    the path, another finder) answers True and ``importlib.metadata`` decides.
    """
    finders = [f for f in sys.meta_path if hasattr(f, "find_distributions")]
    if any(f is not importlib.machinery.PathFinder for f in finders):
        return True
    marker = f"[{group}]".encode()
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as listing:
                names = [e.name for e in listing if e.name.endswith((".dist-info", ".egg-info"))]
        except NotADirectoryError:
            return True  # a zip file on the path
        except OSError:
            continue  # a missing directory lists nothing, for importlib.metadata too
        for name in names:
            try:
                with open(os.path.join(entry or ".", name, "entry_points.txt"), "rb") as handle:
                    if marker in handle.read():
                        return True
            except OSError:
                continue
    return False


class HookImplementations:
    """A built-in plugin's hook implementations and nothing else.

    pluggy looks at every attribute of what is registered; a module holds dozens (its
    imports, classes, constants), which made registering the built-ins a tenth of a
    one-file scan's time. The functions are the module's own, markers and all.
    """

    def __init__(self, plugin: object) -> None:
        self._names = [n for n in dir(plugin) if n.startswith(HOOK_PREFIX)]
        for name in self._names:
            setattr(self, name, getattr(plugin, name))

    def __dir__(self) -> list[str]:
        return list(self._names)


class DeferredHooks:
    """Stands in for a built-in module whose hooks take no arguments: each call imports
    the module (once) and calls its implementation."""

    def __init__(self, module: str, hooks: tuple[str, ...]) -> None:
        self._names = list(hooks)
        for hook in hooks:

            def call(hook: str = hook) -> Any:
                return getattr(importlib.import_module(module), hook)()

            setattr(self, hook, hookspecs.hookimpl(call))

    def __dir__(self) -> list[str]:
        return list(self._names)


@dataclass
class PluginInfo:
    name: str
    origin: str  # "builtin", a distribution "name version", or "test"
    contributes: dict[str, list[str]] = field(default_factory=dict)


class PluginHost:
    """The plugins of one run and the errors they raised."""

    def __init__(self, *, load_entry_points: bool = True, blocked: Iterable[str] = ()) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs.AuditorSpec)
        self.errors: list[InputError] = []
        self.infos: dict[str, PluginInfo] = {}
        self._blocked = set(blocked)
        self._rules: list[tuple[str, Any]] | None = None
        for name, module in BUILTIN_PLUGINS:
            self._register_module(name, module, "builtin")
        for name, module, hooks in DEFERRED_BUILTIN_PLUGINS:
            self.register(DeferredHooks(module, hooks), name, "builtin")
        if load_entry_points:
            self._load_entry_points()
        self.pm.check_pending()

    # -- registration -------------------------------------------------------------
    def register(self, plugin: object, name: str, origin: str = "api") -> None:
        """Register an already imported plugin (a module or an object)."""
        if name in self._blocked:
            return
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # a bad hookimpl signature, a name clash...
            self._error(name, f"could not be registered: {exc}")
            return
        self.infos[name] = PluginInfo(name, origin)

    def _register_module(self, name: str, module_name: str, origin: str) -> None:
        """Register a module, or an object in one (``module:attribute``)."""
        module_name, _, attribute = module_name.partition(":")
        try:
            module: ModuleType = importlib.import_module(module_name)
            plugin = getattr(module, attribute) if attribute else module
        except Exception as exc:
            self._error(name, f"failed to import {module_name}: {type(exc).__name__}: {exc}")
            return
        self.register(HookImplementations(plugin), name, origin)

    def _load_entry_points(self) -> None:
        if not may_have_entry_points(ENTRY_POINT_GROUP):
            return  # no installed distribution declares one: skip importlib.metadata (email, zipfile...)
        from importlib import metadata

        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self._blocked or self.pm.has_plugin(ep.name):
                continue
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "unknown"
            try:
                plugin = ep.load()
            except Exception as exc:
                self._error(ep.name, f"failed to load ({ep.value}): {type(exc).__name__}: {exc}")
                continue
            self.register(plugin, ep.name, dist)

    def _error(self, plugin: str, message: str) -> None:
        self.errors.append(InputError(f"plugin {plugin}", message))

    # -- calling hooks ------------------------------------------------------------
    def _call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of a hook, each in its own guard."""
        results = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            try:
                value = impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception as exc:
                self._error(impl.plugin_name, f"raised in {hook_name}: {type(exc).__name__}: {exc}")
                continue
            if value is not None:
                results.append((impl.plugin_name, value))
        # get_hookimpls() is in registration order: built-ins first, then entry points.
        return results

    def _collect(self, hook_name: str, kind: str, label: Callable[[Any], str]) -> list[tuple[str, Any]]:
        out = []
        for plugin, items in self._call_each(hook_name):
            for item in items:
                out.append((plugin, item))
                info = self.infos.get(plugin)
                if info is not None:
                    info.contributes.setdefault(kind, []).append(label(item))
        return out

    def rules(self) -> list[tuple[str, Any]]:
        """``(plugin name, rule class)`` pairs; an id claimed twice is an error naming both."""
        if self._rules is None:
            self._rules = self._load_rules()
        return self._rules

    def _load_rules(self) -> list[tuple[str, Any]]:
        seen: dict[str, str] = {}
        out = []
        for plugin, rule in self._collect("auditor_add_rules", "rules", lambda r: r.id):
            if rule.id in seen:
                self._error(plugin, f"rule id {rule.id} is already defined by plugin {seen[rule.id]}")
                continue
            seen[rule.id] = plugin
            out.append((plugin, rule))
        return out

    def file_sources(self) -> list[Any]:
        sources = [s for _, s in self._collect("auditor_add_file_sources", "sources", lambda s: s.name)]
        return sorted(sources, key=lambda s: s.priority)

    def reporters(self) -> dict[str, Any]:
        return self._by_key("auditor_add_reporters", "reporters", "name", "report format {!r} is already defined")

    def fact_providers(self) -> dict[str, Any]:
        """Account-context fact providers by kind; a kind claimed twice is an error naming the plugin."""
        return self._by_key("auditor_add_fact_providers", "facts", "kind", "fact kind {!r} is already provided")

    def sinks(self) -> dict[str, Any]:
        """Sinks by name; a name claimed twice is an error naming the second plugin."""
        return self._by_key("auditor_add_sinks", "sinks", "name", "sink {!r} is already defined")

    def _by_key(self, hook: str, what: str, key: str, clash: str) -> dict[str, Any]:
        """What a hook adds, by its ``key`` attribute; the first plugin to claim a key keeps it,
        and each later claim is an error naming that plugin (``clash`` formats the key)."""
        out: dict[str, Any] = {}
        for plugin, item in self._collect(hook, what, lambda i: getattr(i, key)):
            value = getattr(item, key)
            if value in out:
                self._error(plugin, clash.format(value))
                continue
            out[value] = item
        return out

    def configure(self, settings: Any) -> None:
        self._call_each("auditor_configure", settings=settings)

    def implements(self, hook_name: str) -> bool:
        """Whether any plugin implements this hook (so a caller can skip calling it per item)."""
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())

    def suppress(self, finding: Finding, target: Target) -> Suppression | None:
        for _, value in self._call_each("auditor_suppress", finding=finding, target=target):
            return value
        return None

    def session_finish(self, result: Any) -> None:
        self._call_each("auditor_session_finish", result=result)
