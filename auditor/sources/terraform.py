"""Terraform: configuration (``.tf`` and ``.tf.json``), plans and state.

HCL is parsed with tree-sitter's HCL grammar (a C parser, tolerant of errors, with the
position of every attribute and block), so a finding points at the exact line. Values
resolve as ``auditor.sources.tf_eval`` describes (literals, variables with their
defaults and tfvars, locals, dynamic-block iterators); anything computed stays an
``Unresolved`` value with its source text. Every ``distribution`` block is read
(Checkov reads only the first); a ``dynamic`` block is expanded when its ``for_each``
resolves and audited once through its ``content`` otherwise, and so is the resource
itself by its ``count`` or ``for_each`` (one target per instance). Suppression:
``# ib-audit:ignore IBD001 reason`` inside the resource or directly above it.

What the resource sends to Image Builder follows the provider, not the text
(hashicorp/terraform-provider-aws, internal/service/imagebuilder/
distribution_configuration.go): empty strings, empty sets and maps, and a
``max_parallel_launches`` or ``target_resource_count`` of 0 are never sent (each
``expand`` function checks ``v != ""``, ``Len() > 0`` or ``v != 0``); ``null`` is unset.
``launch_template_configuration.default`` has ``Default: true``, which is what Image
Builder does with an omitted ``setDefaultVersion`` too, so it is left for IBD015 to read
as omitted.

Plans (``terraform show -json``) and state are read by ``auditor.sources.terraform_json``.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from auditor._api_model import SHAPES
from auditor.hookspecs import hookimpl
from auditor.model import (
    InlineSuppression,
    InputError,
    Origin,
    Scenario,
    SourceMap,
    Target,
    Unresolved,
    join_pointer,
)
from auditor.sources import (
    LoadResult,
    SourceError,
    checked_config,
    display_path,
    read_option_file,
    read_text,
    walk,
)
from auditor.sources.tf_eval import (
    NOT_PLAIN,
    Evaluator,
    ModuleCall,
    ModuleValues,
    NodeSpans,
    Positions,
    Scope,
    attributes,
    block_parts,
    holds_unresolved,
    named,
    parse_hcl,
    plain_value,
    short,
)
from auditor.suppress import DIRECTIVE, comment_suppressions

RESOURCE_TYPE = "aws_imagebuilder_distribution_configuration"
log = logging.getLogger(__name__)
# Terraform block or attribute name -> (API member, is a repeated block / list).
BLOCKS = {
    "distribution": ("distributions", True),
    "ami_distribution_configuration": ("amiDistributionConfiguration", False),
    "container_distribution_configuration": ("containerDistributionConfiguration", False),
    "fast_launch_configuration": ("fastLaunchConfigurations", True),
    "launch_template_configuration": ("launchTemplateConfigurations", True),
    "s3_export_configuration": ("s3ExportConfiguration", False),
    "ssm_parameter_configuration": ("ssmParameterConfigurations", True),
    "launch_permission": ("launchPermission", False),
    "target_repository": ("targetRepository", False),
    "launch_template": ("launchTemplate", False),
    "snapshot_configuration": ("snapshotConfiguration", False),
}
ATTRIBUTE_RENAMES = {"default": "setDefaultVersion"}
# Terraform's own arguments on the resource: not API members.
META = {
    "count",
    "for_each",
    "provider",
    "depends_on",
    "lifecycle",
    "region",
    "tags_all",
    "id",
    "arn",
    "date_created",
    "date_updated",
    "timeouts",
}


# API member or shape -> Terraform argument or block name.
_SPELLED = (
    {api: tf for tf, (api, _) in BLOCKS.items()}
    | {api: tf for tf, api in ATTRIBUTE_RENAMES.items()}
    | {
        "DistributionConfiguration": "the resource",
        "LaunchPermissionConfiguration": "launch_permission",
        "TargetContainerRepository": "target_repository",
        "FastLaunchLaunchTemplateSpecification": "launch_template",
        "FastLaunchSnapshotConfiguration": "snapshot_configuration",
    }
)


def tf_spelling(member: str) -> str:
    """An API member (or shape) as a Terraform argument or block name."""
    if member in _SPELLED:
        return _SPELLED[member]
    return "".join("_" + c.lower() if c.isupper() else c for c in member).lstrip("_")


@functools.lru_cache(maxsize=1024)
def api_name(name: str) -> str:
    if name in ATTRIBUTE_RENAMES:
        return ATTRIBUTE_RENAMES[name]
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# -- what the provider sends ---------------------------------------------------------------------
ZERO_MEANS_UNSET = frozenset({"maxParallelLaunches", "targetResourceCount"})


def provider_semantics(config: dict[str, Any], provenance: dict[str, str]) -> dict[str, Any]:
    """The configuration as the provider sends it to Image Builder (see the module docstring)."""

    def walk(value: Any, shape_name: str) -> Any:
        spec = SHAPES[shape_name]
        if spec["type"] == "structure" and isinstance(value, dict):
            out = {}
            for key, item in value.items():
                member = spec["members"].get(key)
                if member is None:
                    out[key] = item  # not a provider argument: IBD016 names it
                    continue
                if type(item) is str and (item or key == "region"):
                    out[key] = item  # the common case, nothing to walk
                    continue
                unset = item is None or (isinstance(item, (list, dict, str)) and not item and key != "region")
                if unset or (key in ZERO_MEANS_UNSET and type(item) is int and item == 0):
                    continue  # a variable's note stays: it explains why the object lacks the member
                out[key] = walk(item, member)
            return out
        if spec["type"] == "list" and isinstance(value, list):
            member = spec["member"]
            return [walk(item, member) for item in value]
        return value

    return walk(config, "DistributionConfiguration")


# -- HCL resource bodies -------------------------------------------------------------------------
# An attribute is ``identifier = expression``; with a plain identifier and no comment
# the text after the ``=`` is the expression's.
_SIMPLE_ATTRIBUTE = re.compile(rb"([A-Za-z_][A-Za-z0-9_-]*)[ \t]*=[ \t]*(.+)", re.DOTALL)


class _Converter:
    """A resource body -> API-shaped dict, with canonical pointer -> span and provenance."""

    def __init__(self, pos: Positions, scope: Scope) -> None:
        self.pos = pos
        self.scope = scope
        self.spans = NodeSpans(pos)
        self.provenance: dict[str, str] = {}
        # No value read so far holds an Unresolved (plain literals cannot): the engine
        # then need not look for unresolved objects.
        self.literal = True

    def _value(self, node, pointer: str, scope: Scope) -> Any:
        plain = plain_value(self.pos.data[node.start_byte : node.end_byte])
        if plain is not NOT_PLAIN:
            return plain  # a literal: no evaluator, no variable to note
        evaluator = Evaluator(self.pos, scope)
        value = evaluator.value(node)
        if evaluator.notes:
            self.provenance[pointer] = "; ".join(evaluator.notes)
        if self.literal and holds_unresolved(value):
            self.literal = False
        return value

    def body(self, body, pointer: str, top: bool, scope: Scope) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if body is None:
            return out
        data, source, mark = self.pos.data, self.pos.source, self.spans.mark
        for item in body.named_children:  # comments are skipped by their type
            kind = item.type
            if kind == "attribute":
                # ``name = literal`` read off the attribute's bytes (see plain_value),
                # else through its identifier and expression nodes.
                simple = _SIMPLE_ATTRIBUTE.fullmatch(data, item.start_byte, item.end_byte)
                value = plain_value(simple.group(2)) if simple is not None else NOT_PLAIN
                if value is not NOT_PLAIN:
                    name = simple.group(1).decode()
                    if top and name in META:
                        continue
                    key = api_name(name)
                    path = join_pointer(pointer, key)
                    out[key] = value
                else:
                    children = item.named_children
                    expr = next((c for c in children if c.type == "expression"), None)
                    name = source(children[0])
                    if (top and name in META) or expr is None:
                        continue
                    key = api_name(name)
                    path = join_pointer(pointer, key)
                    value = out[key] = self._value(expr, path, scope)
                mark(path, item)
                if isinstance(value, list):
                    for index in range(len(value)):
                        mark(f"{path}/{index}", item)
            elif kind == "block":
                name, labels, inner = block_parts(item, self.pos)
                if name == "dynamic" and labels:
                    self._dynamic(item, labels[0], inner, out, pointer, top, scope)
                    continue
                if top and name in META:
                    continue
                self._block(item, name, inner, out, pointer, scope)
        return out

    def _block(self, item, name: str, inner, out: dict, pointer: str, scope: Scope, note: str = "") -> None:
        key, repeated = BLOCKS.get(name, (api_name(name), False))
        if repeated:
            items = out.setdefault(key, [])
            if not isinstance(items, list):
                return
            list_path = join_pointer(pointer, key)
            path = f"{list_path}/{len(items)}"  # an index needs no escaping
            self.spans.mark(list_path, item, first=True)
            self.spans.mark(path, item)
            items.append(self.body(inner, path, False, scope))
        else:
            path = join_pointer(pointer, key)
            self.spans.mark(path, item)
            out[key] = self.body(inner, path, False, scope)
        if note:
            self.provenance[path] = note

    def _dynamic(self, item, name: str, inner, out: dict, pointer: str, top: bool, scope: Scope) -> None:
        """``dynamic "x"``: one block per element when ``for_each`` resolves, else its content once."""
        if inner is None or (top and name in META):
            return
        content = next(
            (b for b in named(inner) if b.type == "block" and block_parts(b, self.pos)[0] == "content"), None
        )
        if content is None:
            return
        body = block_parts(content, self.pos)[2]
        args = attributes(inner, self.pos)
        iterator = self.pos.source(args["iterator"]).strip() if "iterator" in args else name
        evaluator = Evaluator(self.pos, scope)
        for_each = evaluator.value(args["for_each"]) if "for_each" in args else Unresolved("for_each")
        note = "; ".join(evaluator.notes)
        if isinstance(for_each, dict):
            elements = [(k, for_each[k]) for k in sorted(for_each)]  # Terraform iterates maps by key
        elif isinstance(for_each, list):
            elements = list(enumerate(for_each))
        else:
            # Unknown until plan: audit the content once, its iterator unresolved.
            unknown = Unresolved(f"{iterator}.value")
            elements = [(Unresolved(f"{iterator}.key"), unknown)]
        for key, value in elements:
            # Findings point at the dynamic block's header, where the author declared it.
            self._block(item, name, body, out, pointer, scope.with_iterator(iterator, key, value), note)


def _comment_suppressions(lines: list[str], start_line: int, end_line: int) -> tuple[InlineSuppression, ...]:
    """``# ib-audit:ignore`` comments in or directly above the resource (``auditor.suppress``)."""
    return comment_suppressions(lines, start_line, end_line)


def finish(
    config: dict,
    display: str,
    address: str,
    origin: Origin,
    source_map: SourceMap,
    result: LoadResult,
    suppressions=(),
    provenance: dict[str, str] | None = None,
    literal: bool = False,
) -> Target:
    """A Terraform resource as a target: provider semantics applied, types checked.

    ``literal``: the source knows ``config`` holds no ``Unresolved`` value; the target
    says so when the type check replaced none either (``Target.literal``).
    """
    provenance = dict(provenance or {})
    config = provider_semantics(config, provenance)
    errors_before = len(result.errors)
    checked = checked_config(config, source_map, display, result, address)
    name = checked.get("name") if isinstance(checked.get("name"), str) else address
    return Target(
        id=f"{display}#{address}",
        name=name,
        origin=origin,
        config=checked,
        source_map=source_map,
        suppressions=suppressions,
        spell=tf_spelling,
        scenarios=(Scenario(checked, source_map, provenance=provenance),) if provenance else (),
        literal=literal and len(result.errors) == errors_before,
    )


# A resource's count or for_each makes at most this many instances to audit; past it
# (a hostile default of 100,000 keys) the resource is audited once and the file errs.
MAX_INSTANCES = 1000
META_ARGUMENTS = ("count", "for_each")  # what makes instances, in that order


def instances(count: Any, for_each: Any, scope: Scope) -> tuple[list[tuple[str, Scope]], str | None]:
    """The instances a resource's ``count`` or ``for_each`` makes, as (address suffix,
    scope): ``["prod"]`` with ``each.key``/``each.value``, ``[0]`` with ``count.index``;
    none for ``count = 0`` or an empty map, which Terraform creates nothing for. One,
    unexpanded, when the argument is absent or does not resolve (its ``each``/``count``
    references stay unresolved); a problem when there are too many."""
    if isinstance(for_each, dict) or (isinstance(for_each, list) and all(type(v) is str for v in for_each)):
        values = for_each if isinstance(for_each, dict) else {k: k for k in for_each}  # a set: each.value is the key
        what = "for_each"
        made = [
            (f"[{_quoted(k)}]", scope.with_instance(each=(k, values[k]))) for k in sorted(values)[: MAX_INSTANCES + 1]
        ]  # maps by key, as Terraform; a set of strings in lexical order
    elif type(count) is int and count >= 0:
        what = "count"
        made = [(f"[{i}]", scope.with_instance(index=i)) for i in range(min(count, MAX_INSTANCES + 1))]
    else:
        return [("", scope)], None
    if len(made) > MAX_INSTANCES:
        return [("", scope)], f"{what} makes more than {MAX_INSTANCES:,} instances: audited once, unexpanded"
    return made, None


def _quoted(key: Any) -> str:
    return json.dumps(str(key), ensure_ascii=False)


def with_default_tags(config: dict[str, Any], provenance: dict[str, str], scope: Scope) -> bool:
    """Add the resource's provider ``default_tags`` to its ``tags``, as the provider does
    (``tags_all``, which it sends to Image Builder; the resource's own tags win). Returns
    whether the tags are now unresolved. A module that declares no such provider
    configuration (a child module: its caller's provider is not read) leaves them as written."""
    found = scope.module.default_tags(scope.where[0], scope.file) if scope.module is not None else None
    if found is None:
        return False
    defaults, notes = found
    own = config.get("tags")
    if isinstance(own, Unresolved):
        return True
    if isinstance(defaults, Unresolved):
        config["tags"] = defaults
    elif isinstance(defaults, dict) and defaults:
        config["tags"] = {**defaults, **(own if isinstance(own, dict) else {})}
    else:
        return False  # none (or not a map, which Terraform rejects)
    provenance.setdefault("/tags", "; ".join(notes))
    return isinstance(defaults, Unresolved)


# Arguments of a module block that are not the module's variables.
MODULE_META = frozenset({"source", "version", "count", "for_each", "providers", "depends_on"})
# At most this many Terraform files are read to find module calls (a monorepo's worth).
MAX_CALLER_FILES = 20_000


def _terraform_files(roots: list[Path]) -> Iterator[Path]:
    """The .tf and .tf.json files under ``roots``, as the scan's own walk finds them, at
    most ``MAX_CALLER_FILES``."""
    found = 0
    for root in roots:
        paths = [root] if root.is_file() else walk(root, quiet=True) if root.is_dir() else []
        for path in paths:
            if path.name.endswith((".tf", ".tf.json")):
                found += 1
                if found > MAX_CALLER_FILES:
                    return
                yield path


def _hcl_module_blocks(body, pos) -> list[tuple[str, Any, dict[str, Any], Positions]]:
    out = []
    for block in (c for c in named(body) if c.type == "block") if body is not None else ():
        kind, labels, inner = block_parts(block, pos)
        if kind == "module" and len(labels) == 1:
            arguments = attributes(inner, pos)
            source = Evaluator(pos).value(arguments["source"]) if "source" in arguments else None
            out.append((labels[0], source, arguments, pos))
    return out


def _json_module_blocks(document: Any) -> list[tuple[str, Any, dict[str, Any], None]]:
    out = []
    modules = document.get("module") if isinstance(document, dict) else None
    for entry in modules if isinstance(modules, list) else [modules]:
        for label, body in entry.items() if isinstance(entry, dict) else ():
            for item in body if isinstance(body, list) else [body]:
                if isinstance(item, dict):
                    out.append((label, item.get("source"), {k: v for k, v in item.items() if k != "//"}, None))
    return out


class ModuleReader:
    """Variables and locals per module directory, shared by the HCL and JSON sources."""

    def __init__(self) -> None:
        self.var_files: list[tuple[Path, str, str]] = []  # (path, display name, text), read once
        self.max_bytes = 20_000_000
        self._modules: dict[Path, ModuleValues] = {}
        self._reported: set[Path] = set()
        self.roots: list[Path] = []  # the scanned paths, where module calls are looked for
        self._calls: dict[Path, list[ModuleCall]] | None = None

    def configure(self, settings) -> list[InputError]:
        self.max_bytes = settings.max_file_size_mb * 1_000_000
        self.roots = [Path(p) for p in getattr(settings, "scan_paths", ())]
        errors = []
        for raw in getattr(settings, "var_files", ()):
            read = read_option_file(raw, "--var-file", self.max_bytes)
            if isinstance(read, InputError):
                errors.append(read)
                continue
            # Parsed once here, so that a broken file is one error for the run, not one
            # for every module that would read it (nor one per worker of a parallel scan).
            path, display, text = read
            probe = ModuleValues(path.parent, [], self.max_bytes)
            probe.read_tfvars(path, display, text)
            if probe.errors:
                errors.extend(InputError(file, f"--var-file: {problem}") for file, problem in probe.errors)
                continue
            self.var_files.append(read)
        return errors

    def scope(self, path: Path) -> Scope:
        return Scope(self.module(path.resolve().parent))

    def module(self, directory: Path) -> ModuleValues:
        if directory not in self._modules:
            self._modules[directory] = ModuleValues(directory, self.var_files, self.max_bytes, self.calls)
        return self._modules[directory]

    def calls(self, directory: Path) -> list[ModuleCall]:
        """The ``module`` blocks under the scanned paths whose local ``source`` is
        ``directory`` (found once per run, on first need)."""
        if self._calls is None:
            self._calls = {}
            for path in _terraform_files(self.roots):
                self._add_calls(path)
        return self._calls.get(directory, [])

    def _add_calls(self, path: Path) -> None:
        text, _problem = read_text(path, self.max_bytes)
        if text is None or "module" not in text or "source" not in text:
            return
        caller = path.resolve().parent
        try:
            if path.name.endswith(".json"):
                found = _json_module_blocks(json.loads(text))
            else:
                found = _hcl_module_blocks(*parse_hcl(text))
        except (SourceError, ValueError, RecursionError):
            return  # the file's own scan reports it if it holds a distribution configuration
        for label, source, written, pos in found:
            if isinstance(source, str) and source.startswith(("./", "../")):
                arguments = {k: v for k, v in written.items() if k not in MODULE_META}
                maps = "providers" in written
                call = ModuleCall(label, display_path(path), arguments, pos, self.module(caller), maps)
                self._calls.setdefault((caller / source).resolve(), []).append(call)

    def errors(self, path: Path) -> list[InputError]:
        """Problems reading the module's tfvars files, reported once per module."""
        directory = path.resolve().parent
        module = self._modules.get(directory)
        if module is None or directory in self._reported or not module.errors:
            return []
        self._reported.add(directory)
        return [InputError(file, problem) for file, problem in module.errors]


class TerraformSource:
    name = "terraform"
    priority = 60

    def __init__(self, modules: ModuleReader | None = None) -> None:
        self.modules = modules or ModuleReader()

    def configure(self, settings) -> list[InputError]:
        """Read ``--var-file`` names (the files are read with the first module that needs them)."""
        return self.modules.configure(settings)

    def sniff(self, path: Path, text: str) -> bool:
        return path.name.endswith(".tf") and RESOURCE_TYPE in text

    def load(self, path: Path, text: str, display: str) -> LoadResult:
        body, pos = parse_hcl(text)
        # Only a line holding the directive can suppress: a file without it has none to find.
        lines = text.splitlines() if DIRECTIVE in text else None
        result = LoadResult()
        scope = self.modules.scope(path)
        for block in (c for c in named(body) if c.type == "block") if body is not None else ():
            kind, labels, inner = block_parts(block, pos)
            if kind != "resource" or len(labels) != 2 or labels[0] != RESOURCE_TYPE:
                continue
            address = f"{RESOURCE_TYPE}.{labels[1]}"
            meta = attributes(inner, pos)
            provider, region = (pos.source(meta[k]) if k in meta else None for k in ("provider", "region"))
            here = scope.for_resource(provider, region, path.name)
            count, for_each = (Evaluator(pos, here).value(meta[k]) if k in meta else None for k in META_ARGUMENTS)
            made, problem = instances(count, for_each, here)
            span = pos.span(block)
            if problem is not None:
                result.errors.append(InputError(display, f"line {span.start_line}: {address}: {problem}"))
            if not made:
                log.info("%s: %s: count or for_each makes no instance: nothing to audit", display, address)
            suppressions = _comment_suppressions(lines, span.start_line, span.end_line) if lines is not None else ()
            for suffix, instance in made:
                converter = _Converter(pos, instance)
                config = converter.body(inner, "", True, instance)
                unresolved_tags = with_default_tags(config, converter.provenance, instance)
                converter.spans.mark("", block)
                target = finish(
                    config,
                    display,
                    address + suffix,
                    Origin(kind="terraform", file=display, resource=address + suffix),
                    SourceMap(file=display, spans=converter.spans),
                    result,
                    suppressions,
                    converter.provenance,
                    literal=converter.literal and not unresolved_tags,
                )
                result.targets.append(target)
        result.errors.extend(self.modules.errors(path))
        return result


@hookimpl
def auditor_add_file_sources() -> list:
    from auditor.sources.terraform_json import TerraformJSONSource, TerraformPlanSource

    modules = ModuleReader()
    return [TerraformSource(modules), TerraformJSONSource(modules), TerraformPlanSource()]


__all__ = [
    "BLOCKS",
    "META",
    "META_ARGUMENTS",
    "RESOURCE_TYPE",
    "api_name",
    "finish",
    "instances",
    "provider_semantics",
    "short",
    "tf_spelling",
    "with_default_tags",
]
