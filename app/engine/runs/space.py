"""A sweep's search space: ``NAME=SPEC`` parameters checked against the project's schema,
turned into Optuna suggestions, and applied to a copy of the project.

NAME is a training setting (``lr``, ``batch_size``, ``optimizer``: ``config.TRAINING_FIELDS``)
or ``NODE.PARAM`` (``conv1.out_channels``: the layer catalogue's, or a block's, parameter).
SPEC is ``LOW:HIGH`` or ``LOW:HIGH:log`` (a range: float or int by the parameter's kind) or
``A,B,C`` (a list of values, each checked by the parameter). Nothing is evaluated: numbers
are parsed with ``int``/``float``, other values taken as text (``true``/``false``/``null``
read as such).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from .. import config
from ..errors import NetCanvasError
from ..params import Param, show
from ..project import Project, parse_project, project_to_dict

# settings a sweep may not vary: where the run goes, and what it starts from
UNSWEPT = ("device", "init_weights")
MAX_CHOICES = 1000


class SweepSpecError(NetCanvasError):
    """A sweep parameter that cannot be used: ``where`` names it (``lr``, ``conv1.out_channels``)."""


@dataclass
class SweepParam:
    """One dimension of the search space. ``kind``: "float" or "int" (``low``..``high``,
    ``log`` for a log scale) or "categorical" (``choices``)."""

    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: list | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SweepParam":
        return cls(**data)

    def describe(self) -> str:
        """The parameter as the CLI spells it: ``lr in [0.0001, 0.1] log``, ``conv1.out_channels in {4, 8}``."""
        if self.kind == "categorical":
            return f"{self.name} in {{{', '.join(json.dumps(c) for c in self.choices)}}}"
        return f"{self.name} in [{self.low:g}, {self.high:g}]" + (" log" if self.log else "")


def schema_param(name: str, project: Project) -> Param:
    """The schema ``Param`` that sweep parameter ``name`` sets. Raises ``SweepSpecError``
    naming an unknown setting, node or parameter."""
    if "." not in name:
        fields = {p.name: p for p in config.TRAINING_FIELDS}
        if name not in fields:
            raise SweepSpecError("unknown training setting; a sweep varies a training setting ("
                                 + ", ".join(n for n in fields if n not in UNSWEPT)
                                 + ") or a node parameter as NODE.PARAM", name)
        if name in UNSWEPT:
            raise SweepSpecError("cannot be swept (it says where a run goes or what it starts from)", name)
        return fields[name]
    node_id, _, param_name = name.partition(".")
    node = project.graph.nodes.get(node_id)
    if node is None:
        raise SweepSpecError(f"the project has no node {node_id!r}; its nodes: " + ", ".join(project.graph.nodes),
                             name)
    spec = project.graph.spec(node.type)
    if spec is None or param_name not in spec.param_index:
        known = ", ".join(spec.param_index) if spec is not None and spec.param_index else "none"
        raise SweepSpecError(f"{node.type} node {node_id!r} has no parameter {param_name!r}; its parameters: {known}",
                             name)
    return spec.param_index[param_name]


def parse_param(text: str, project: Project) -> SweepParam:
    """``NAME=SPEC`` checked against ``project``'s schema. Raises ``SweepSpecError`` naming
    the parameter: unknown setting/node/parameter, a bound or value outside the parameter's
    range, a malformed SPEC."""
    if not isinstance(text, str) or "=" not in text:
        raise SweepSpecError(f"expected NAME=SPEC (lr=1e-4:1e-1:log, conv1.out_channels=4,8,16); received {text!r}")
    name, _, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not name:
        raise SweepSpecError(f"expected NAME=SPEC with a name before '='; received {text!r}")
    param = schema_param(name, project)
    if not spec:
        raise SweepSpecError("expected a range LOW:HIGH[:log] or a list A,B,C after '='; received nothing", name)
    if ":" in spec and "," not in spec:
        return _range(name, param, spec)
    return _choices(name, param, spec)


def _range(name: str, param: Param, spec: str) -> SweepParam:
    parts = [p.strip() for p in spec.split(":")]
    log = False
    if len(parts) == 3 and parts[2].lower() == "log":
        log, parts = True, parts[:2]
    if len(parts) != 2:
        raise SweepSpecError(f"expected LOW:HIGH or LOW:HIGH:log; received {spec!r}", name)
    if param.kind not in ("int", "float"):
        raise SweepSpecError(f"takes a list of values (A,B,C), not a range: it is {param.expected()}", name)
    kind = param.kind
    bounds = []
    for part in parts:
        try:
            value = int(part) if kind == "int" else float(part)
        except ValueError:
            raise SweepSpecError(f"expected {'an integer' if kind == 'int' else 'a number'} as a bound; "
                                 f"received {part!r}", name) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise SweepSpecError(f"expected a finite number as a bound; received {part!r}", name)
        bounds.append(_check(name, param, value))
    low, high = bounds
    if not low < high:
        raise SweepSpecError(f"LOW must be below HIGH; received {spec!r}", name)
    if log and low <= 0:
        raise SweepSpecError(f"a log range needs LOW above 0; received {spec!r}", name)
    return SweepParam(name, kind, low, high, log)


def _choices(name: str, param: Param, spec: str) -> SweepParam:
    items = [s.strip() for s in spec.split(",")]
    if len(items) > MAX_CHOICES:
        raise SweepSpecError(f"at most {MAX_CHOICES} values; received {len(items)}", name)
    values = []
    for item in items:
        if not item:
            raise SweepSpecError(f"an empty value in the list {spec!r}", name)
        value = _check(name, param, _value(param, item))
        if json.dumps(value) in [json.dumps(v) for v in values]:
            raise SweepSpecError(f"the value {item!r} is listed twice", name)
        values.append(value)
    return SweepParam(name, "categorical", choices=values)


def _value(param: Param, text: str) -> Any:
    """A list item read as the parameter's kind wants it (nothing evaluated)."""
    lowered = text.lower()
    if lowered in ("null", "none"):
        return None
    if param.kind == "bool" or lowered in ("true", "false"):
        return {"true": True, "false": False}.get(lowered, text)
    if param.kind in ("choice", "string"):
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def _check(name: str, param: Param, value: Any) -> Any:
    """``value`` as the parameter takes it (4.0 -> 4 for an integer); raises ``SweepSpecError``."""
    if isinstance(value, float) and param.kind in ("int", "int_or_pair", "padding") and value.is_integer():
        value = int(value)
    try:
        param.check(value)
    except ValueError as e:
        raise SweepSpecError(str(e), name) from None
    if not (value is None or isinstance(value, (bool, int, float, str))):
        raise SweepSpecError(f"a sweep takes numbers, text, true, false or null; received {show(value)}", name)
    return value


def check_space(params: list[SweepParam], sampler: str) -> None:
    """Refuse a parameter named twice, and a range for the grid sampler (it takes lists)."""
    seen = set()
    for p in params:
        if p.name in seen:
            raise SweepSpecError("is given twice", p.name)
        seen.add(p.name)
        if sampler == "grid" and p.kind != "categorical":
            raise SweepSpecError(f"the grid sampler takes lists only (A,B,C); received a range {p.describe()}",
                                 p.name)
    if not params:
        raise SweepSpecError("a sweep needs at least one --param NAME=SPEC")


def grid_size(params: list[SweepParam]) -> int:
    """How many points a grid over ``params`` (all categorical) has."""
    return math.prod(len(p.choices) for p in params)


def suggest(trial, param: SweepParam) -> Any:
    """The value an Optuna ``trial`` suggests for ``param``."""
    if param.kind == "float":
        return trial.suggest_float(param.name, param.low, param.high, log=param.log)
    if param.kind == "int":
        return trial.suggest_int(param.name, param.low, param.high, log=param.log)
    return trial.suggest_categorical(param.name, param.choices)


def current_values(project: Project, params: list[SweepParam]) -> dict | None:
    """The values ``project`` has now for ``params`` (the schema's default where unset),
    when every one lies in its range or among its choices; None otherwise (the project's
    own settings are then not a point of the space)."""
    values = {}
    for p in params:
        param = schema_param(p.name, project)
        if "." in p.name:
            node_id, _, key = p.name.partition(".")
            value = project.graph.nodes[node_id].params.get(key, param.default)
        else:
            value = project.training.get(p.name, param.default)
        inside = (value in p.choices if p.kind == "categorical" else
                  isinstance(value, (int, float)) and not isinstance(value, bool) and p.low <= value <= p.high)
        if not inside:
            return None
        values[p.name] = value
    return values


def apply_params(project: Project, values: dict) -> Project:
    """A copy of ``project`` with the training settings and node parameters of ``values``
    (``{"lr": 0.01, "conv1.out_channels": 8}``) set; ``project`` is unchanged. Raises
    ``SweepSpecError`` for a name the project does not have, ``ProjectError`` when the copy
    is not a valid project."""
    data = project_to_dict(project)
    for name, value in values.items():
        schema_param(name, project)  # names an unknown setting, node or parameter
        if "." not in name:
            data["training"][name] = value
            continue
        node_id, _, param_name = name.partition(".")
        node = next(n for n in data["graph"]["nodes"] if n["id"] == node_id)
        node["params"] = {**node["params"], param_name: value}
    copy = parse_project(data, source=project.name)
    copy.path = project.path
    return copy
