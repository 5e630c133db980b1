"""CloudFormation template semantics: parameters, mappings, conditions and intrinsics.

A template is audited the way CloudFormation would deploy it, once per reachable
combination of the conditions its resource uses (each ``Fn::If`` both ways):

- **Scenarios.** The conditions named by ``Fn::If`` in a resource are enumerated. A
  combination that no parameter values can produce is skipped, as cfn-lint does: each
  parameter a condition compares is given the literals it is compared with plus "any
  other value" (within ``AllowedValues``), and only the condition values some such
  assignment yields are kept. Past ``MAX_SCENARIOS`` combinations a subset that takes
  every branch of every condition at least once is audited and the rest is reported
  as "could not verify", never passed silently.
- **Parameters.** ``!Ref P`` is the value from ``--parameters`` when given, else P's
  ``Default`` when the scenario allows it, else the value the scenario's conditions
  force; otherwise it stays unresolved. SSM parameter types never resolve (their
  default names a parameter, not a value). Each use is noted, so a finding can say it
  relied on a default.
- **Intrinsics.** ``Fn::If`` picks the scenario's branch, ``AWS::NoValue`` removes the
  property or list entry, ``Fn::Sub``, ``Fn::Join``, ``Fn::Select``, ``Fn::Split`` and
  ``Fn::FindInMap`` resolve when their inputs do; ``AWS::AccountId``, ``AWS::Region``
  and ``AWS::Partition`` stay unresolved but known to mean the stack's own; everything
  else (``Fn::GetAtt``, ``Fn::ImportValue``...) stays unresolved.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from auditor.model import CUSTOMER_KEY, OWN_ACCOUNT, OWN_PARTITION, OWN_REGION, Unresolved

MAX_SCENARIOS = 64  # condition combinations audited per resource
# Resources whose Ref / Arn / KeyId is a customer-managed KMS key (an alias can only name one).
_KEY_TYPES = frozenset({"AWS::KMS::Key", "AWS::KMS::ReplicaKey", "AWS::KMS::Alias"})
MAX_VALUATIONS = 4096  # parameter assignments tried to find which combinations are possible

# Pseudo parameters that stand for the stack's own account, region and partition.
PSEUDO_PARAMETERS = {"AWS::AccountId": OWN_ACCOUNT, "AWS::Region": OWN_REGION, "AWS::Partition": OWN_PARTITION}


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NO_VALUE = _Marker("AWS::NoValue")  # the property or list entry is removed
OTHER = _Marker("<any other value>")  # a parameter value no condition compares it with
_MISSING = _Marker("<missing>")


def is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    name = str(next(iter(value)))
    return name in ("Ref", "Condition") or name.startswith("Fn::")


def describe_intrinsic(value: dict) -> str:
    ((name, arg),) = value.items()
    short = "!" + (name[4:] if name.startswith("Fn::") else name)
    if isinstance(arg, str):
        return f"{short} {arg}"
    if isinstance(arg, list) and arg and isinstance(arg[0], str) and name == "Fn::Sub":
        return f"{short} {arg[0]}"  # the template text: rules may still read literals in it
    return f"{short} {json.dumps(arg, default=str)[:200]}"


def _text(value: Any) -> str:
    """A scalar as CloudFormation compares and substitutes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


# -- --parameters files ----------------------------------------------------------------------
def parse_parameter_file(text: str) -> dict[str, str]:
    """Parameter values from the JSON ``aws cloudformation create-stack --parameters`` takes
    (``[{"ParameterKey": k, "ParameterValue": v}]``) or a CodePipeline template
    configuration (``{"Parameters": {k: v}}``). Raises ValueError naming the problem."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}") from None
    out: dict[str, str] = {}
    if isinstance(document, list):
        for index, entry in enumerate(document):
            if not isinstance(entry, dict) or not isinstance(entry.get("ParameterKey"), str):
                raise ValueError(f"entry {index} is not an object with a ParameterKey")
            if entry.get("UsePreviousValue") is True and "ParameterValue" not in entry:
                continue  # the stack's current value: unknown here
            value = entry.get("ParameterValue")
            if not isinstance(value, (str, int, float, bool)):
                raise ValueError(f"entry {index} ({entry['ParameterKey']}): ParameterValue must be a string")
            out[entry["ParameterKey"]] = _text(value)
        return out
    if isinstance(document, dict) and isinstance(document.get("Parameters"), dict):
        for key, value in document["Parameters"].items():
            if not isinstance(value, (str, int, float, bool)):
                raise ValueError(f"Parameters.{key} must be a string")
            out[str(key)] = _text(value)
        return out
    raise ValueError(
        'expected the create-stack list [{"ParameterKey": ..., "ParameterValue": ...}] '
        'or a template configuration {"Parameters": {...}}'
    )


# -- parameters --------------------------------------------------------------------------------
@dataclass
class Parameter:
    name: str
    type: str = "String"
    default: Any = _MISSING
    allowed: tuple[str, ...] | None = None
    given: Any = _MISSING  # from --parameters
    given_from: str = ""

    @property
    def is_ssm(self) -> bool:
        return self.type.startswith("AWS::SSM::Parameter::Value<")

    @property
    def is_list(self) -> bool:
        return self.type == "CommaDelimitedList" or self.type.startswith("List<")

    def typed(self, raw: Any) -> Any:
        """A parameter value as ``!Ref`` returns it: lists split, numbers as numbers."""
        if self.is_list:
            items = raw if isinstance(raw, list) else _text(raw).split(",")
            values = [_text(item).strip() for item in items]
            return [_number(v) for v in values] if self.type == "List<Number>" else values
        if self.type == "Number":
            return _number(_text(raw))
        return _text(raw)


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


# -- the template --------------------------------------------------------------------------------
@dataclass
class Assumption:
    """One reachable combination of a resource's conditions, with the parameter values
    (``witnesses``) that produce it; ``witnesses`` is None when they were not worked out."""

    conditions: tuple[tuple[str, bool], ...]
    witnesses: list[dict[Any, Any]] | None = None


@dataclass
class ScenarioPlan:
    assumptions: list[Assumption]
    note: str | None = None  # why some combinations were not audited


@dataclass
class _Atom:
    """A ``Fn::Equals``: a parameter compared with a literal, a constant, or opaque."""

    kind: str  # var | const | free
    variable: Any = None
    literal: str = ""
    value: bool = False


class Template:
    """The parts of a template that decide what a resource's properties resolve to."""

    def __init__(self, document: Mapping[str, Any], given: Mapping[str, tuple[str, str]] | None = None) -> None:
        given = given or {}
        self.parameters: dict[str, Parameter] = {}
        self.problems: list[str] = []
        for name, spec in _section(document, "Parameters").items():
            spec = spec if isinstance(spec, dict) else {}
            parameter = Parameter(name=str(name), type=str(spec.get("Type", "String")))
            if "Default" in spec and not is_intrinsic(spec.get("Default")):
                parameter.default = spec["Default"]
            allowed = spec.get("AllowedValues")
            if isinstance(allowed, list):
                parameter.allowed = tuple(_text(v) for v in allowed)
            if name in given:
                parameter.given, parameter.given_from = given[name]
            self.parameters[parameter.name] = parameter
        self.mappings = _section(document, "Mappings")
        self.conditions = _section(document, "Conditions")
        resources = _section(document, "Resources")
        self.resource_types = {name: r.get("Type") for name, r in resources.items() if isinstance(r, dict)}
        self._atoms: dict[str, _Atom] = {}
        self._plans: dict[tuple, ScenarioPlan] = {}

    # -- scenarios -------------------------------------------------------------------------------
    def plan(self, used: list[str], resource_condition: Any = None) -> ScenarioPlan:
        """The combinations of ``used`` conditions a deployment can take (the resource's own
        ``Condition`` held true), each with the parameter values that produce it.

        Resources that use the same conditions share one plan (templates repeat them).
        """
        key = (tuple(used), resource_condition if isinstance(resource_condition, str) else None)
        if key not in self._plans:
            self._plans[key] = self._plan(used, resource_condition)
        return self._plans[key]

    def _plan(self, used: list[str], resource_condition: Any) -> ScenarioPlan:
        for name in used:
            if name not in self.conditions:
                self.problems.append(f"Fn::If names condition {name!r}, which Conditions does not define")
        if isinstance(resource_condition, str) and resource_condition not in self.conditions:
            self.problems.append(f"Condition {resource_condition!r} is not defined in Conditions")
            resource_condition = None
        variables = self._variables([*used, *([resource_condition] if isinstance(resource_condition, str) else [])])
        domains = [self._domain(v) for v in variables]
        size = 1
        for domain in domains:
            size *= len(domain)
        found: dict[tuple[bool, ...], list[dict]] = {}
        if size <= MAX_VALUATIONS:
            for values in itertools.product(*domains):
                valuation = dict(zip(variables, values, strict=True))
                if isinstance(resource_condition, str) and not self._holds(resource_condition, valuation, set()):
                    continue
                key = tuple(self._holds(name, valuation, set()) for name in used)
                found.setdefault(key, []).append(valuation)
        if not found:
            # Too many parameter combinations to try, or a resource Condition that can never
            # hold: audit every combination rather than none.
            found = {key: None for key in itertools.product((True, False), repeat=len(used))}
        keys = sorted(found, key=lambda k: tuple(not v for v in k))
        note = None
        if len(keys) > MAX_SCENARIOS:
            keys, note = (
                _covering(keys, used),
                (
                    f"{len(keys)} combinations of conditions {', '.join(used)} exceed the bound of {MAX_SCENARIOS}: "
                    "audited a subset that takes every branch of every condition; other combinations were not checked"
                ),
            )
        return ScenarioPlan(
            [Assumption(tuple(zip(used, key, strict=True)), found[key]) for key in keys],
            note,
        )

    def forced_by(self, condition: str) -> list[str]:
        """The --parameters values a condition depends on, as notes ("parameter Env = 'prod' from p.json")."""
        out = []
        for variable in self._variables([condition]):
            parameter = self.parameters.get(variable) if isinstance(variable, str) else None
            if parameter is not None and parameter.given is not _MISSING:
                out.append(f"parameter {parameter.name} = {_short(parameter.given)} (from {parameter.given_from})")
        return out

    def _variables(self, names: list[str]) -> list[Any]:
        """Parameters (and opaque comparisons) the named conditions depend on, in order."""
        out: list[Any] = []
        for atom in self._atoms_of(names):
            key = atom.variable if atom.kind in ("var", "free") else None
            if key is not None and key not in out:
                out.append(key)
        return out

    def _atoms_of(self, names: list[str]) -> Iterator[_Atom]:
        seen: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop(0)
            if name in seen:
                continue
            seen.add(name)
            if name not in self.conditions:
                yield self._free(("undefined", name))
                continue
            yield from self._walk_condition(self.conditions[name], stack)

    def _walk_condition(self, expr: Any, stack: list[str]) -> Iterator[_Atom]:
        if isinstance(expr, dict) and len(expr) == 1:
            ((fn, arg),) = expr.items()
            if fn == "Condition" and isinstance(arg, str):
                stack.append(arg)
                return
            if fn in ("Fn::And", "Fn::Or", "Fn::Not") and isinstance(arg, list):
                for item in arg:
                    yield from self._walk_condition(item, stack)
                return
            if fn == "Fn::Equals":
                yield self._atom(expr)
                return
        yield self._atom(expr)

    def _free(self, key: Any) -> _Atom:
        return _Atom("free", variable=key)

    def _atom(self, expr: Any) -> _Atom:
        cache_key = json.dumps(expr, sort_keys=True, default=str)
        atom = self._atoms.get(cache_key)
        if atom is not None:
            return atom
        atom = self._free(("opaque", cache_key))
        arg = expr.get("Fn::Equals") if isinstance(expr, dict) else None
        if isinstance(arg, list) and len(arg) == 2:
            left, right = (self._operand(x) for x in arg)
            if left[0] == "lit" and right[0] == "lit":
                atom = _Atom("const", value=left[1] == right[1])
            elif left[0] == "var" and right[0] == "lit":
                atom = _Atom("var", variable=left[1], literal=right[1])
            elif left[0] == "lit" and right[0] == "var":
                atom = _Atom("var", variable=right[1], literal=left[1])
        self._atoms[cache_key] = atom
        return atom

    def _operand(self, value: Any) -> tuple[str, Any]:
        if isinstance(value, (str, int, float, bool)):
            return "lit", _text(value)
        if isinstance(value, dict) and set(value) == {"Ref"} and isinstance(value["Ref"], str):
            name = value["Ref"]
            parameter = self.parameters.get(name)
            if name.startswith("AWS::") or (parameter is not None and not parameter.is_list):
                return "var", name
        # Only facts may fix a comparison: literals, mappings and --parameters values, never
        # a Default (the deployer may override it).
        resolved = Resolver(self, {}, None, use_defaults=False).evaluate(value)
        if isinstance(resolved, (str, int, float, bool)):
            return "lit", _text(resolved)
        return "opaque", None

    def literals(self, variable: Any) -> set[str]:
        return {a.literal for a in self._atoms.values() if a.kind == "var" and a.variable == variable}

    def _domain(self, variable: Any) -> list[Any]:
        if isinstance(variable, tuple):  # an opaque comparison or undefined condition
            return [True, False]
        parameter = self.parameters.get(variable)
        if parameter is not None and parameter.given is not _MISSING:
            return [_text(parameter.given)]
        literals = sorted(self.literals(variable))
        allowed = parameter.allowed if parameter is not None else None
        if allowed is None:
            return [*literals, OTHER]
        values = [v for v in literals if v in allowed]
        return values + ([OTHER] if set(allowed) - set(literals) else [])

    def _holds(self, name: str, valuation: dict, visiting: set[str]) -> bool:
        if name not in self.conditions or name in visiting:
            return bool(valuation.get(("undefined", name), False))
        return self._eval(self.conditions[name], valuation, visiting | {name})

    def _eval(self, expr: Any, valuation: dict, visiting: set[str]) -> bool:
        if isinstance(expr, dict) and len(expr) == 1:
            ((fn, arg),) = expr.items()
            if fn == "Condition" and isinstance(arg, str):
                return self._holds(arg, valuation, visiting)
            if fn == "Fn::And" and isinstance(arg, list):
                return all(self._eval(x, valuation, visiting) for x in arg)
            if fn == "Fn::Or" and isinstance(arg, list):
                return any(self._eval(x, valuation, visiting) for x in arg)
            if fn == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
                return not self._eval(arg[0], valuation, visiting)
        atom = self._atom(expr)
        if atom.kind == "const":
            return atom.value
        if atom.kind == "var":
            return valuation.get(atom.variable) == atom.literal
        return bool(valuation.get(atom.variable, False))


def _section(document: Mapping[str, Any], name: str) -> dict:
    value = document.get(name) if isinstance(document, Mapping) else None
    return value if isinstance(value, dict) else {}


def _covering(keys: list[tuple[bool, ...]], used: list[str]) -> list[tuple[bool, ...]]:
    """A few combinations that together take every branch of every condition."""
    wanted = {(i, v) for key in keys for i, v in enumerate(key)}
    chosen: list[tuple[bool, ...]] = []
    for key in keys:
        literals = set(enumerate(key))
        if literals & wanted:
            chosen.append(key)
            wanted -= literals
        if not wanted or len(chosen) >= MAX_SCENARIOS:
            break
    return chosen


def conditions_used(value: Any) -> list[str]:
    """Condition names in ``Fn::If`` anywhere under ``value``, in order of first use."""
    out: list[str] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            arg = node.get("Fn::If") if len(node) == 1 else None
            if isinstance(arg, list) and arg and isinstance(arg[0], str) and arg[0] not in out:
                out.append(arg[0])
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return out


# -- resolving values under one scenario ----------------------------------------------------------
_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


@dataclass
class Resolver:
    """Evaluates intrinsics under one assumption; ``notes`` collects what values relied on."""

    template: Template
    assumed: Mapping[str, bool]
    witnesses: list[dict] | None
    use_defaults: bool = True
    notes: list[str] = field(default_factory=list)

    def branch(self, arg: Any) -> tuple[int, Any] | Unresolved:
        """``Fn::If [cond, a, b]``: (1, a) or (2, b) under this scenario."""
        if not (isinstance(arg, list) and len(arg) == 3 and isinstance(arg[0], str)):
            return Unresolved(describe_intrinsic({"Fn::If": arg}))
        if arg[0] not in self.assumed:
            return Unresolved(describe_intrinsic({"Fn::If": arg}))
        value = self.assumed[arg[0]]
        forced = self.template.forced_by(arg[0])
        if forced:  # the branch follows from values the user gave, not from both ways
            note = f"condition {arg[0]} is {'true' if value else 'false'}: {', '.join(forced)}"
            if note not in self.notes:
                self.notes.append(note)
        return (1, arg[1]) if value else (2, arg[2])

    def evaluate(self, value: Any) -> Any:
        """A template value with every intrinsic evaluated: literals, ``NO_VALUE`` or ``Unresolved``."""
        if isinstance(value, list):
            out = [self.evaluate(item) for item in value]
            return [item for item in out if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if not is_intrinsic(value):
            evaluated = {k: self.evaluate(v) for k, v in value.items()}
            return {k: v for k, v in evaluated.items() if v is not NO_VALUE}
        ((name, arg),) = value.items()
        handler = getattr(self, "_fn_" + name.replace("Fn::", "").replace("::", "_").lower(), None)
        if handler is None:
            return Unresolved(describe_intrinsic(value))
        return handler(arg, value)

    def _fn_getatt(self, arg: Any, node: dict) -> Any:
        """Only known to mean something: the Arn or KeyId of a key the template creates."""
        parts = arg.split(".", 1) if isinstance(arg, str) else arg
        key = (
            isinstance(parts, list)
            and len(parts) == 2
            and all(isinstance(p, str) for p in parts)
            and self.template.resource_types.get(parts[0]) in _KEY_TYPES
            and parts[1] in ("Arn", "KeyId")
        )
        return Unresolved(describe_intrinsic(node), CUSTOMER_KEY if key else None)

    def _fn_if(self, arg: Any, node: dict) -> Any:
        picked = self.branch(arg)
        if isinstance(picked, Unresolved):
            return picked
        return self.evaluate(picked[1])

    def _fn_ref(self, arg: Any, node: dict) -> Any:
        if not isinstance(arg, str):
            return Unresolved(describe_intrinsic(node))
        if arg == "AWS::NoValue":
            return NO_VALUE
        if arg.startswith("AWS::"):
            return Unresolved(f"!Ref {arg}", PSEUDO_PARAMETERS.get(arg))
        parameter = self.template.parameters.get(arg)
        if parameter is None and self.template.resource_types.get(arg) in _KEY_TYPES:
            return Unresolved(f"!Ref {arg}", CUSTOMER_KEY)  # the key's id, or the alias's name
        if parameter is None or parameter.is_ssm:
            return Unresolved(f"!Ref {arg}")  # a resource, or an SSM parameter looked up at deploy time
        raw, how = self._parameter_value(parameter)
        if raw is _MISSING:
            return Unresolved(f"!Ref {arg}")
        value = parameter.typed(raw)
        note = f"parameter {arg} = {_short(value)} ({how})"
        if note not in self.notes:
            self.notes.append(note)
        return value

    def _parameter_value(self, parameter: Parameter) -> tuple[Any, str]:
        if parameter.given is not _MISSING:
            return parameter.given, f"from {parameter.given_from}"
        if not self.use_defaults:
            return _MISSING, ""
        seen = {w[parameter.name] for w in self.witnesses or () if parameter.name in w}
        if not seen:
            return (parameter.default, "its Default") if parameter.default is not _MISSING else (_MISSING, "")
        if parameter.default is not _MISSING:
            default = _text(parameter.default)
            compared = self.template.literals(parameter.name)
            if default in seen or (OTHER in seen and default not in compared):
                return parameter.default, "its Default"
        concrete = seen - {OTHER}
        if len(seen) == 1 and concrete:
            return concrete.pop(), "as this scenario's conditions require"
        return _MISSING, ""

    def _fn_sub(self, arg: Any, node: dict) -> Any:
        if isinstance(arg, str):
            text, variables = arg, {}
        elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and isinstance(arg[1], dict):
            text, variables = arg
        else:
            return Unresolved(describe_intrinsic(node))
        whole = _SUB_VAR.fullmatch(text)
        if whole and whole.group(1) in PSEUDO_PARAMETERS and whole.group(1) not in variables:
            return Unresolved(describe_intrinsic(node), PSEUDO_PARAMETERS[whole.group(1)])
        unresolved = False

        def replace(match: re.Match) -> str:
            nonlocal unresolved
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} is written as ${Literal}
            if name in variables:
                value = self.evaluate(variables[name])
            elif "." in name:
                value = Unresolved(name)  # ${Resource.Attribute}
            else:
                value = self._fn_ref(name, {"Ref": name})
            if isinstance(value, (str, int, float, bool)):
                return _text(value)
            unresolved = True
            return match.group(0)

        result = _SUB_VAR.sub(replace, text)
        return Unresolved(f"!Sub {result}") if unresolved else result

    def _fn_join(self, arg: Any, node: dict) -> Any:
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str)):
            return Unresolved(describe_intrinsic(node))
        items = self.evaluate(arg[1])
        if isinstance(items, list) and all(isinstance(i, (str, int, float, bool)) for i in items):
            return arg[0].join(_text(i) for i in items)
        return Unresolved(describe_intrinsic(node))

    def _fn_select(self, arg: Any, node: dict) -> Any:
        if not (isinstance(arg, list) and len(arg) == 2):
            return Unresolved(describe_intrinsic(node))
        index, items = self.evaluate(arg[0]), self.evaluate(arg[1])
        try:
            position = int(index)
        except (TypeError, ValueError):
            return Unresolved(describe_intrinsic(node))
        if isinstance(items, list) and 0 <= position < len(items):
            return items[position]
        return Unresolved(describe_intrinsic(node))

    def _fn_split(self, arg: Any, node: dict) -> Any:
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and arg[0]):
            return Unresolved(describe_intrinsic(node))
        text = self.evaluate(arg[1])
        if isinstance(text, str):
            return text.split(arg[0])
        return Unresolved(describe_intrinsic(node))

    def _fn_findinmap(self, arg: Any, node: dict) -> Any:
        if not (isinstance(arg, list) and len(arg) in (3, 4)):
            return Unresolved(describe_intrinsic(node))
        keys = [self.evaluate(k) for k in arg[:3]]
        if not all(isinstance(k, (str, int, float, bool)) for k in keys):
            return Unresolved(describe_intrinsic(node))
        value: Any = self.template.mappings
        for key in keys:
            value = value.get(_text(key)) if isinstance(value, dict) else None
        if value is None:
            return Unresolved(describe_intrinsic(node))
        return self.evaluate(value)
