"""The project that NetCanvas' ONNX exporter records in a model's metadata, and its import.

An inference graph drops what only training does (the Dropout family, StochasticDepth,
Identity) and decomposes NetCanvas' own types into plain ops, so the exporter records the
project itself: ``PROJECT_KEY`` holds the project JSON as ``dumps_project`` writes it (without
``editor``), and ``WEIGHTS_KEY`` says where the file holds each state_dict tensor that it does
not hold under its own name (torch's exporter transposes Linear weights into MatMuls, reorders
LSTM gates, merges initializers of equal values). On import the project is used only when it
parses (``parse_project``, size-limited, never executed) and its compiled graph fits the file:
the same inputs and output with the same shapes, and every state_dict tensor found in the file
with its shape. The weights are then the file's. Anything else raises ``NotFitting`` with the
reason, and the import goes on as the file's ops say.

A recipe is a list of segments ``[initializer, transposed, first_row, end_row]``: the tensor,
viewed as rows of its last dimension (one value a row for a vector), is those rows of the
initializers (viewed alike, transposed first where said) one after another; or
``{"fill": value}`` for a tensor the exported graph does not read (``num_batches_tracked``, a
zero bias folded away), which was constant; or ``{"packed": [start, end]}``: those values of
the initializer ``STATE_NAME``, which holds the tensors torch's exporter computed into others
(a BatchNorm folded into the Conv before it keeps neither its own nor the Conv's weights).
A recipe is used before a same-named initializer: the exporter writes one exactly where that
initializer is not the tensor.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np
import torch
from onnx import numpy_helper

from ..compiler import compile_graph
from ..errors import NetCanvasError, first_line
from ..inference import analyze
from ..project import Project, dumps_project, parse_project

PROJECT_KEY = "netcanvas.project"
WEIGHTS_KEY = "netcanvas.weights"
STATE_NAME = "netcanvas.state"
MAX_PROJECT_CHARS = 16 * 1024 * 1024
# gate blocks tried when a tensor is pieces of an initializer: GRU has 3 gates, LSTM 4
_BLOCKS = (1, 2, 3, 4)


class NotFitting(ValueError):
    """The recorded project cannot be used; the message says why."""


# -- export ---------------------------------------------------------------------------------
def project_metadata(project: Project, state: dict[str, torch.Tensor], proto) -> dict[str, str]:
    """The metadata entries that record ``project`` (its JSON, no ``editor``) and where
    ``proto`` (the exported model) holds each tensor of ``state`` (the compiled module's
    state_dict) that it does not hold under its own name. A tensor the graph holds nowhere
    (the exporter folded a BatchNorm into its Conv) goes into one float32 initializer
    ``STATE_NAME`` added to ``proto``, read by no node. Returns ``{key: text}``."""
    plain = dataclasses.replace(project, editor=None)
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    recipes: dict[str, Any] = {}
    packed: list[np.ndarray] = []
    packed_size = 0
    finder = _Finder(inits)
    for key, tensor in state.items():
        value = tensor.detach().cpu().numpy()
        held = inits.get(key)
        if held is not None and held.shape == value.shape and np.array_equal(held, value):
            continue
        recipe = finder.locate(value)
        if recipe is None:
            flat = value.reshape(-1)
            if flat.size and np.all(flat == flat[0]) and math.isfinite(float(flat[0])):
                recipe = {"fill": float(flat[0])}
            elif value.dtype.kind == "f" and value.size:
                # the exporter computed it into something else (a BatchNorm folded into
                # its Conv): the file keeps it beside the graph, read by no node
                recipe = {"packed": [packed_size, packed_size + int(value.size)]}
                packed.append(value.astype(np.float32).reshape(-1))
                packed_size += int(value.size)
            else:
                recipe = None
        recipes[key] = recipe
    if packed:
        proto.graph.initializer.append(numpy_helper.from_array(np.concatenate(packed), STATE_NAME))
    return {PROJECT_KEY: dumps_project(plain), WEIGHTS_KEY: json.dumps(recipes)}


class _Finder:
    """Finds a tensor's rows among the initializers (exact values)."""

    def __init__(self, inits: dict[str, np.ndarray]):
        self.inits = {k: v for k, v in inits.items() if v.dtype.kind == "f" and v.size}

    def views(self, cols: int):
        for name, a in self.inits.items():
            if a.size % cols == 0:
                yield name, 0, a.reshape(-1, cols)
            if a.ndim == 2 and a.shape[0] == cols and a.shape[0] != a.size:
                yield name, 1, a.T

    def locate(self, value: np.ndarray) -> list | None:
        if value.dtype.kind != "f" or not value.size:
            return None
        cols = value.shape[-1] if value.ndim >= 2 else 1
        rows = value.reshape(-1, cols)
        for k in _BLOCKS:
            if rows.shape[0] % k:
                continue
            n = rows.shape[0] // k
            found = []
            for b in range(k):
                segment = self.segment(rows[b * n:(b + 1) * n], cols)
                if segment is None:
                    break
                found.append(segment)
            else:
                return found
        return None

    def segment(self, block: np.ndarray, cols: int) -> list | None:
        for name, transposed, view in self.views(cols):
            if view.shape[0] < block.shape[0]:
                continue
            starts = np.flatnonzero(view[: view.shape[0] - block.shape[0] + 1, 0] == block[0, 0])
            for start in starts[:64]:
                if np.array_equal(view[start:start + block.shape[0]], block):
                    return [name, transposed, int(start), int(start + block.shape[0])]
        return None


# -- import ---------------------------------------------------------------------------------
def recorded_project(model, props: dict[str, str], output: str | None,
                     input_shapes: dict[str, list[int]]) -> tuple[Project, dict[str, torch.Tensor], dict[str, str], str]:
    """The project recorded in ``props`` (a model's metadata) with ``model``'s weights:
    ``(project, state_dict, {ONNX input: Input node id}, ONNX output name)``. Raises
    ``NotFitting`` saying why when it is corrupt or does not fit the file."""
    text = props[PROJECT_KEY]
    if len(text) > MAX_PROJECT_CHARS:
        raise NotFitting(f"it is {len(text):,} characters, more than the {MAX_PROJECT_CHARS:,} read")
    try:
        project = parse_project(text, "the recorded project")
    except NetCanvasError as e:
        raise NotFitting(first_line(e)) from None
    a = analyze(project.graph)
    if not a.ok:
        raise NotFitting("its graph does not validate: " + first_line(a.errors[0]))
    g = model.graph
    init_names = {i.name for i in g.initializer}
    file_inputs = [i for i in g.input if i.name not in init_names]
    names = list(a.inputs)
    if [i.name for i in file_inputs] != names:
        raise NotFitting(f"its inputs {names} are not the file's {[i.name for i in file_inputs]}")
    for info in file_inputs:
        want = list(a.shapes[info.name])
        if info.name in input_shapes and list(input_shapes[info.name]) != want:
            raise NotFitting(f"input {info.name!r} was given the shape {list(input_shapes[info.name])}; "
                             f"the recorded project's is {want}")
        _same_dims(info, want, f"input {info.name!r}")
    if len(g.output) != 1 or g.output[0].name != a.output or output not in (None, a.output):
        raise NotFitting(f"its output {a.output!r} is not the file's only output "
                         f"({', '.join(repr(o.name) for o in g.output)})")
    _same_dims(g.output[0], list(a.shapes[a.output]), f"output {a.output!r}")
    if a.total_params > 2 ** 31:
        raise NotFitting(f"it has {a.total_params:,} parameters")
    target = compile_graph(project.graph, a).state_dict()
    return project, _weights(model, props, target), {n: n for n in names}, a.output


def _same_dims(info, want: list[int], what: str) -> None:
    t = info.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim] if t.HasField("shape") else None
    if dims is None or len(dims) != len(want) + 1 or any(d != w for d, w in zip(dims[1:], want)):
        raise NotFitting(f"{what} has the shape {dims and dims[1:]} in the file and {want} in the project")


def _weights(model, props: dict[str, str], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    recipes = _recipes(props.get(WEIGHTS_KEY))
    inits = {i.name: i for i in model.graph.initializer}
    arrays: dict[str, np.ndarray] = {}

    def array(name: str) -> np.ndarray:
        if name not in arrays:
            if name not in inits:
                raise NotFitting(f"the file has no initializer {name!r}")
            arrays[name] = numpy_helper.to_array(inits[name])
        return arrays[name]

    state: dict[str, torch.Tensor] = {}
    for key, want in target.items():
        shape = tuple(want.shape)
        if key in recipes:
            # a recipe wins over a same-named initializer: the exporter writes one exactly
            # where the tensor of that name is not the state's (a Conv with a BatchNorm
            # folded in keeps the Conv's name)
            value = _cook(key, recipes[key], shape, array)
        elif key in inits and tuple(inits[key].dims) == shape:
            value = array(key)
        elif key in inits:
            raise NotFitting(f"{key} has the shape {list(inits[key].dims)} in the file and {list(shape)} "
                             "in the project")
        else:
            raise NotFitting(f"the file holds no tensor for {key}")
        state[key] = torch.from_numpy(np.array(value, copy=True)).to(want.dtype)
    return state


def _recipes(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    if len(text) > MAX_PROJECT_CHARS:
        raise NotFitting("its weight locations are too long to read")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise NotFitting("its weight locations are not JSON") from None
    if not isinstance(value, dict):
        raise NotFitting("its weight locations are not an object")
    return value


def _cook(key: str, recipe: Any, shape: tuple, array) -> np.ndarray:
    size = math.prod(shape)
    if isinstance(recipe, dict) and set(recipe) == {"fill"} and isinstance(recipe["fill"], (int, float)) \
            and not isinstance(recipe["fill"], bool) and math.isfinite(recipe["fill"]):
        return np.full(shape, recipe["fill"], np.float64)
    if isinstance(recipe, dict) and set(recipe) == {"packed"}:
        span = recipe["packed"]
        if not (isinstance(span, list) and len(span) == 2 and all(type(v) is int for v in span)
                and span[1] - span[0] == size):
            raise NotFitting(f"the file records no usable location for {key}")
        held = array(STATE_NAME).reshape(-1)
        if not 0 <= span[0] <= span[1] <= held.size:
            raise NotFitting(f"{key}: values {span[0]}..{span[1]} are not in initializer {STATE_NAME!r}")
        return held[span[0]:span[1]].reshape(shape)
    if not isinstance(recipe, list) or not recipe or not all(
            isinstance(s, list) and len(s) == 4 and isinstance(s[0], str)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in s[1:]) for s in recipe):
        raise NotFitting(f"the file records no usable location for {key}")
    cols = shape[-1] if len(shape) >= 2 else 1
    parts = []
    for name, transposed, start, end in recipe:
        a = array(name)
        if transposed:
            if a.ndim != 2 or a.shape[0] != cols:
                raise NotFitting(f"{key}: initializer {name!r} of shape {list(a.shape)} cannot hold it")
            view = a.T
        else:
            if a.size % cols:
                raise NotFitting(f"{key}: initializer {name!r} of shape {list(a.shape)} cannot hold it")
            view = a.reshape(-1, cols)
        if not 0 <= start < end <= view.shape[0]:
            raise NotFitting(f"{key}: rows {start}..{end} are not in initializer {name!r}")
        parts.append(view[start:end])
    rows = np.concatenate(parts)
    if rows.size != size:
        raise NotFitting(f"{key}: the file holds {rows.size} values for it, the project needs {size}")
    return rows.reshape(shape)
