"""Terraform in JSON: ``.tf.json`` configuration, plans and state.

- ``.tf.json`` (Terraform's JSON syntax): read like ``.tf``, with the same variables,
  locals, dynamic blocks and provider semantics; strings are templates (``"${var.x}"``).
  A ``"//"`` property is the syntax's comment: one whose text starts with the directive
  (``"//": "ib-audit:ignore IBD009 reason"``), anywhere in a resource, suppresses for the
  whole resource, as a ``#`` comment in it does.
- Plans (``terraform show -json plan.out``): ``planned_values`` (child modules
  included), else ``resource_changes[].change.after`` for plans that carry only those.
  A value listed in ``after_unknown`` is unknown until apply ("could not verify"), not
  absent; tags come from ``tags_all`` (the provider's ``default_tags`` included).
- State (``terraform show -json`` without a plan, or a ``terraform.tfstate`` file): what
  Terraform last applied, located by resource address; the ARN in the state is the
  configuration's identity, so findings line up with a live scan of the same resource.

Files are recognised by structure (the keys Terraform writes), not by their name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from auditor.model import InlineSuppression, InputError, Origin, SourceMap, Unresolved, join_pointer
from auditor.sources import NOT_JSON, LoadResult, json_document
from auditor.sources.jsonfile import ARN_RE
from auditor.sources.jsonpos import LazySpans, loads_with_spans
from auditor.sources.terraform import (
    BLOCKS,
    META,
    META_ARGUMENTS,
    RESOURCE_TYPE,
    ModuleReader,
    api_name,
    finish,
    instances,
    with_default_tags,
)
from auditor.sources.tf_eval import Evaluator, Positions, Scope, json_value
from auditor.suppress import DIRECTIVE, comment_text_entries


class _ParsedJSON:
    """The document decoded once for every source's sniff (``json_document``), and its
    positions found lazily when a finding asks for one."""

    def parse(self, text: str) -> tuple[Any, Any]:
        document = json_document(text)
        if document is NOT_JSON:
            return loads_with_spans(text)  # raises the syntax error with its line and column
        return document, LazySpans(text)

    def sniffed(self, text: str) -> Any:
        document = json_document(text)
        return None if document is NOT_JSON else document


# -- .tf.json ------------------------------------------------------------------------------------
class TerraformJSONSource(_ParsedJSON):
    name = "terraform"
    priority = 45  # before plain JSON, which would take any object naming "region"

    def __init__(self, modules: ModuleReader | None = None) -> None:
        self.modules = modules or ModuleReader()

    def sniff(self, path: Path, text: str) -> bool:
        if not path.name.endswith(".tf.json") or text.lstrip()[:1] != "{" or RESOURCE_TYPE not in text:
            return False
        document = self.sniffed(text)
        return isinstance(document, dict) and "resource" in document

    def load(self, path: Path, text: str, display: str) -> LoadResult:
        document, spans = self.parse(text)
        result = LoadResult()
        scope = self.modules.scope(path)
        for pointer, name, body in _json_resources(document):
            address = f"{RESOURCE_TYPE}.{name}"
            here = scope.for_resource(body.get("provider"), body.get("region"), path.name)
            count, for_each = (
                json_value(body[k], Evaluator(Positions(b""), here)) if k in body else None for k in META_ARGUMENTS
            )
            made, problem = instances(count, for_each, here)
            if problem is not None:
                result.errors.append(InputError(display, f"{address}: {problem}"))
            suppressions = _comment_suppressions(body, pointer, spans)
            for suffix, instance in made:
                converter = _JSONConverter(instance)
                config = converter.body(body, pointer, "", True, instance)
                with_default_tags(config, converter.provenance, instance)
                converter.renames[""] = pointer
                result.targets.append(
                    finish(
                        config,
                        display,
                        address + suffix,
                        Origin(kind="terraform", file=display, resource=address + suffix),
                        SourceMap(file=display, spans=spans, renames=converter.renames),
                        result,
                        suppressions=suppressions,
                        provenance=converter.provenance,
                    )
                )
        result.errors.extend(self.modules.errors(path))
        return result


def _json_resources(document: Any):
    """``(file pointer, name, body)`` of each distribution configuration resource."""
    sections = document.get("resource") if isinstance(document, dict) else None
    listed = sections if isinstance(sections, list) else [sections]
    for index, section in enumerate(listed):
        base = join_pointer("/resource", index) if isinstance(sections, list) else "/resource"
        by_name = section.get(RESOURCE_TYPE) if isinstance(section, dict) else None
        for name, body in by_name.items() if isinstance(by_name, dict) else ():
            pointer = join_pointer(base, RESOURCE_TYPE, name)
            if isinstance(body, list):  # several blocks with the same labels: each is a resource
                for i, item in enumerate(body):
                    if isinstance(item, dict):
                        yield join_pointer(pointer, i), name, item
            elif isinstance(body, dict):
                yield pointer, name, body


def _comment_suppressions(body: Any, pointer: str, spans: Any) -> tuple[InlineSuppression, ...]:
    """``ib-audit:ignore`` entries in the ``"//"`` comments of a resource body and its blocks.

    Terraform ignores a ``"//"`` property's value, a string or a list of strings. Each
    entry is placed at its string's line and column, like a ``#`` comment, and covers the
    whole resource (a JSON comment cannot trail a line).
    """
    out: list[InlineSuppression] = []
    stack = [(body, pointer)]
    while stack:
        value, at = stack.pop()
        if isinstance(value, list):
            stack.extend((item, join_pointer(at, i)) for i, item in reversed(list(enumerate(value))))
            continue
        if not isinstance(value, dict):
            continue
        for name, item in value.items():
            if name != "//":
                stack.append((item, join_pointer(at, name)))
                continue
            comments = item if isinstance(item, list) else [item]
            for index, text in enumerate(comments):
                if not isinstance(text, str) or DIRECTIVE not in text:
                    continue
                where = join_pointer(at, "//", index) if isinstance(item, list) else join_pointer(at, "//")
                span = spans.get(where)
                line, column = (span.start_line, span.start_column + 1) if span is not None else (None, None)
                out.extend(comment_text_entries(text, line, column))
    return tuple(out)


class _JSONConverter:
    """A JSON-syntax resource body -> API shape, with canonical -> file pointers."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.renames: dict[str, str] = {}
        self.provenance: dict[str, str] = {}

    def body(self, body: Any, file_pointer: str, pointer: str, top: bool, scope: Scope) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not isinstance(body, dict):
            return out
        for name, item in body.items():
            child = join_pointer(file_pointer, name)
            if name == "//" or (top and name in META):
                continue
            if name == "dynamic":
                for block_name, spec in item.items() if isinstance(item, dict) else ():
                    self._dynamic(block_name, spec, join_pointer(child, block_name), out, pointer, scope)
                continue
            if name in BLOCKS:
                blocks = item if isinstance(item, list) else [item]
                for index, block in enumerate(blocks):
                    at = join_pointer(child, index) if isinstance(item, list) else child
                    self._block(name, block, at, out, pointer, scope)
                continue
            key = api_name(name)
            path = join_pointer(pointer, key)
            evaluator = Evaluator(Positions(b""), scope)
            out[key] = json_value(item, evaluator)
            if evaluator.notes:
                self.provenance[path] = "; ".join(evaluator.notes)
            self.renames[path] = child
        return out

    def _block(self, name: str, block: Any, file_pointer: str, out: dict, pointer: str, scope: Scope, note="") -> None:
        key, repeated = BLOCKS[name]
        if repeated:
            items = out.setdefault(key, [])
            if not isinstance(items, list):
                return
            path = join_pointer(pointer, key, len(items))
            self.renames.setdefault(join_pointer(pointer, key), file_pointer)
            items.append(self.body(block, file_pointer, path, False, scope))
        elif key not in out:  # one block only: the first wins
            path = join_pointer(pointer, key)
            out[key] = self.body(block, file_pointer, path, False, scope)
        else:
            return
        self.renames[path] = file_pointer
        if note:
            self.provenance[path] = note

    def _dynamic(self, name: str, spec: Any, file_pointer: str, out: dict, pointer: str, scope: Scope) -> None:
        if name not in BLOCKS or not isinstance(spec, dict) or not isinstance(spec.get("content"), dict):
            return
        iterator = spec.get("iterator") if isinstance(spec.get("iterator"), str) else name
        evaluator = Evaluator(Positions(b""), scope)
        for_each = json_value(spec["for_each"], evaluator) if "for_each" in spec else Unresolved("for_each")
        if isinstance(for_each, dict):
            elements = [(k, for_each[k]) for k in sorted(for_each)]
        elif isinstance(for_each, list):
            elements = list(enumerate(for_each))
        else:
            elements = [(Unresolved(f"{iterator}.key"), Unresolved(f"{iterator}.value"))]
        content = join_pointer(file_pointer, "content")
        note = "; ".join(evaluator.notes)
        for key, value in elements:
            self._block(name, spec["content"], content, out, pointer, scope.with_iterator(iterator, key, value), note)


# -- plans and state -----------------------------------------------------------------------------
def classify(document: Any) -> str | None:
    """What ``terraform show -json`` (or a state file) a document is, by its keys."""
    if not isinstance(document, dict):
        return None
    if isinstance(document.get("planned_values"), dict) or isinstance(document.get("resource_changes"), list):
        return "plan"
    values = document.get("values")
    if isinstance(values, dict) and isinstance(values.get("root_module"), dict):
        return "state"
    if isinstance(document.get("version"), int) and isinstance(document.get("resources"), list):
        return "raw-state"
    return None


class TerraformPlanSource(_ParsedJSON):
    """``terraform show -json`` of a plan or of the state, and ``terraform.tfstate`` files."""

    name = "terraform-plan"
    priority = 40

    def sniff(self, path: Path, text: str) -> bool:
        if text.lstrip()[:1] != "{" or RESOURCE_TYPE not in text:
            return False
        return classify(self.sniffed(text)) is not None

    def load(self, path: Path, text: str, display: str) -> LoadResult:
        document, spans = self.parse(text)
        result = LoadResult()
        kind = classify(document)
        if kind == "plan":
            resources = _plan_resources(document)
        elif kind == "state":
            resources = _module_resources(document["values"]["root_module"], "/values/root_module", {})
        else:
            resources = _raw_state_resources(document)
        origin_kind = "terraform-plan" if kind == "plan" else "terraform-state"
        for address, values, pointer, unknown in resources:
            renames: dict[str, str] = {"": pointer}
            config = _plan_values(values, unknown, pointer, "", renames, top=True)
            arn = values.get("arn") if isinstance(values.get("arn"), str) else None
            match = ARN_RE.match(arn) if arn else None
            origin = Origin(
                kind=origin_kind,
                file=display,
                # A state's ARN is the deployed configuration's identity; a plan's may not exist yet.
                arn=arn if match and kind != "plan" else None,
                region=match.group("region") if match else None,
                account=match.group("account") if match else None,
                resource=address,
            )
            result.targets.append(
                finish(config, display, address, origin, SourceMap(file=display, spans=spans, renames=renames), result)
            )
        return result


def _plan_resources(document: dict):
    """``(address, values, file pointer, after_unknown)`` per resource of a plan."""
    changes: dict[str, tuple[int, dict]] = {}
    for index, change in enumerate(_list(document.get("resource_changes"))):
        if _is_ours(change) and isinstance(change.get("change"), dict):
            changes[str(change.get("address"))] = (index, change["change"])
    unknowns = {address: change.get("after_unknown") for address, (_i, change) in changes.items()}
    seen = set()
    planned = document.get("planned_values")
    root = planned.get("root_module") if isinstance(planned, dict) else None
    if isinstance(root, dict):
        for found in _module_resources(root, "/planned_values/root_module", unknowns):
            seen.add(found[0])
            yield found
    for address, (index, change) in changes.items():
        after = change.get("after")
        if address in seen or not isinstance(after, dict):
            continue  # already read from planned_values, or being destroyed
        yield address, after, join_pointer("/resource_changes", index, "change", "after"), change.get("after_unknown")


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _is_ours(resource: Any) -> bool:
    if not isinstance(resource, dict):
        return False
    return resource.get("type") == RESOURCE_TYPE and resource.get("mode", "managed") == "managed"


def _module_resources(root: dict, pointer: str, unknowns: dict):
    stack = [(root, pointer)]
    while stack:
        module, at = stack.pop(0)
        for index, resource in enumerate(_list(module.get("resources"))):
            if not _is_ours(resource) or not isinstance(resource.get("values"), dict):
                continue
            address = str(resource.get("address", f"{RESOURCE_TYPE}.{index}"))
            yield address, resource["values"], join_pointer(at, "resources", index, "values"), unknowns.get(address)
        for index, child in enumerate(_list(module.get("child_modules"))):
            if isinstance(child, dict):
                stack.append((child, join_pointer(at, "child_modules", index)))


def _raw_state_resources(document: dict):
    """A ``terraform.tfstate`` (format 4): resources with instances and their attributes."""
    for index, resource in enumerate(_list(document.get("resources"))):
        if not _is_ours(resource):
            continue
        module = f"{resource['module']}." if isinstance(resource.get("module"), str) else ""
        base = f"{module}{RESOURCE_TYPE}.{resource.get('name')}"
        for number, instance in enumerate(_list(resource.get("instances"))):
            attributes = instance.get("attributes") if isinstance(instance, dict) else None
            if not isinstance(attributes, dict):
                continue
            key = instance.get("index_key")
            address = base if key is None else f'{base}["{key}"]' if isinstance(key, str) else f"{base}[{key}]"
            yield address, attributes, join_pointer("/resources", index, "instances", number, "attributes"), None


def _unknown(name: str) -> Unresolved:
    return Unresolved(f"{name} (known after apply)")


def _plan_values(
    values: Any, unknown: Any, file_pointer: str, pointer: str, renames: dict[str, str], top: bool = False
) -> Any:
    """Plan or state JSON (snake_case, every block a list) -> API shape, unknowns unresolved."""
    if not isinstance(values, dict):
        return values
    flags = unknown if isinstance(unknown, dict) else {}
    out: dict[str, Any] = {}
    if top and ("tags_all" in values or "tags_all" in flags):
        # What AWS gets: the resource's tags merged with the provider's default_tags.
        renames["/tags"] = join_pointer(file_pointer, "tags_all")
        out["tags"] = _unknown("tags_all") if flags.get("tags_all") is True else values.get("tags_all")
    for name in [*values, *(n for n in flags if n not in values)]:
        if top and (name in META or (name == "tags" and "tags" in out)):
            continue
        value, flag = values.get(name), flags.get(name)
        child_file = join_pointer(file_pointer, name)
        key, repeated = BLOCKS.get(name, (api_name(name), False))
        if flag is True:
            out[key] = _unknown(name)
            if name in values:
                renames[join_pointer(pointer, key)] = child_file
            continue
        if value is None:
            continue
        if name in BLOCKS:
            items = value if isinstance(value, list) else [value]
            item_flags = flag if isinstance(flag, list) else []
            if repeated:
                path = join_pointer(pointer, key)
                renames[path] = child_file
                out[key] = []
                for i, item in enumerate(items):
                    renames[join_pointer(path, i)] = join_pointer(child_file, i)
                    item_flag = item_flags[i] if i < len(item_flags) else None
                    at = join_pointer(child_file, i)
                    out[key].append(_plan_values(item, item_flag, at, join_pointer(path, i), renames))
            elif items:
                path = join_pointer(pointer, key)
                renames[path] = join_pointer(child_file, 0)
                item_flag = item_flags[0] if item_flags else None
                out[key] = _plan_values(items[0], item_flag, join_pointer(child_file, 0), path, renames)
            continue
        renames[join_pointer(pointer, key)] = child_file
        if isinstance(value, list) and isinstance(flag, list):
            value = [_unknown(f"{name}[{i}]") if i < len(flag) and flag[i] is True else v for i, v in enumerate(value)]
        elif isinstance(value, dict) and isinstance(flag, dict):
            value = {k: _unknown(f"{name}.{k}") if flag.get(k) is True else v for k, v in value.items()}
        out[key] = value
    return out
