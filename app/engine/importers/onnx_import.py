"""ONNX import: an ``.onnx`` file becomes a NetCanvas project and its weights.

The file is parsed (never executed: constant subgraphs are evaluated with onnx's numpy
reference implementation of standard operators only), then walked once in topological
order. Each ONNX tensor becomes a value (``onnx_values``): a constant, a shape involving the
batch size, a zero-filled state, or a view of a NetCanvas node's output. Operators map to
catalogue layers only where the layer computes exactly the same thing (``onnx_ops``);
anything else is collected, and the import fails with one ``OnnxImportError`` naming every
node it cannot take: nothing is half-imported.

Node ids come from ONNX node names: NetCanvas' own exporter writes ``conv1/Conv``, torch's
TorchScript exporter ``/conv1/Conv``, so a model exported from NetCanvas comes back with the
same ids. Weights come back as a state dict named as ``compile_graph``'s module names them.

This module holds the public API, the loading and the walk over the whole model;
``onnx_builder`` the graph being built and the conversion of one node, ``onnx_errors``
the errors (re-exported here).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnx.inliner
import onnx.version_converter
import torch
from google.protobuf.message import DecodeError

from ..compiler import compile_graph
from ..errors import first_line
from ..files import read_bytes
from ..graph import Graph, Node, id_problem
from ..inference import analyze
from ..layout import layered_layout
from ..project import Project, save_project, weights_path_for
from ..weights import apply_weights, save_tensors
from . import onnx_ops
from .onnx_blocks import with_blocks
from .onnx_builder import GraphBuilder
from .onnx_compare import onnxruntime_difference
from .onnx_checks import DEFAULT_MAX_BYTES, check_opset, malformed_nodes, undecodable_name
from .onnx_errors import OnnxFileError, OnnxImportError
from .onnx_metadata import imported_metadata
from .onnx_names import outer_names, sanitize, torch_scope
from .onnx_project import PROJECT_KEY, NotFitting, recorded_project
from .onnx_tensors import gigabytes, prepare_tensors, type_name
from .onnx_values import Const, Poisoned, Tensor, Unsupported, plain

TOLERANCE = 1e-4
# Files of older operator sets are converted to this one first: onnxruntime refuses the
# oldest, and the converters then see one spelling of each operator (Softmax over one
# axis, Unsqueeze / Split / Pad with their arguments as inputs)
CONVERT_BELOW = 13


@dataclass
class ImportResult:
    """The imported project (nodes laid out), its weights as a state dict keyed like the
    compiled module's, and notes for the user. ``inputs`` maps ONNX input names to Input
    node ids; ``output`` is the ONNX output name; ``source`` the file."""

    project: Project
    state: dict[str, torch.Tensor]
    notes: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    output: str = ""
    source: Path | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    converted: bytes | None = None   # the model converted to a newer opset, where it was

    def weights_metadata(self) -> dict[str, str]:
        """The metadata to save with the imported weights: where they came from, and the
        input normalization (``input_mean``, ``input_std``) and class names the exporter
        recorded, which ``predict`` reads back as it does a trained model's."""
        meta = {"source": "onnx import", **self.metadata}
        if self.source is not None:
            meta["onnx_file"] = self.source.name
        return meta


# -- public API ---------------------------------------------------------------------------
def import_onnx(path: str | Path, input_shapes: dict[str, list[int]] | None = None,
                output: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> ImportResult:
    """Import the ONNX model at ``path``. ``input_shapes`` gives the shape (without batch)
    of inputs whose non-batch dimensions are not fixed in the file; ``output`` picks the
    output of a model that has several (what only the others need is left out).
    ``max_bytes`` bounds what the import may allocate beyond the file: external data read,
    constants folded, the imported model's parameters (2 GB by default). Raises
    ``OnnxFileError`` for a file that cannot be read, ``OnnxImportError`` for a model that
    cannot be imported (a malformed one: naming the node or tensor and what is wrong)."""
    model, converted = _load(Path(path), max_bytes)
    props = {p.key: p.value for p in model.metadata_props if isinstance(p.key, str) and isinstance(p.value, str)}
    unused = None
    if PROJECT_KEY in props:
        try:
            result = _recorded(model, Path(path), props, input_shapes or {}, output)
        except NotFitting as e:
            unused = f"the project recorded in the file was not used ({e}); the model was imported from its operators"
        else:
            result.source = Path(path)
            return result
    try:
        result = _Importer(model, Path(path), input_shapes or {}, output, max_bytes).run()
    except OnnxImportError as e:
        if unused is None:
            raise
        raise type(e)(f"{e.message}; {unused}", e.where, e.failures) from None
    if unused is not None:
        result.notes.insert(0, unused)
    if converted is not None:
        result.notes.insert(0, converted[1])
        result.converted = converted[0]
    result.source = Path(path)
    return result


def _recorded(model, path: Path, props: dict[str, str], input_shapes: dict[str, list[int]],
              output: str | None) -> ImportResult:
    """The project NetCanvas' exporter recorded in the file (``onnx_project``), with the
    file's weights and metadata. Raises ``NotFitting`` when it is unusable."""
    project, state, inputs, out = recorded_project(model, props, output, input_shapes)
    meta, _, notes = imported_metadata(props, [tuple(project.graph.nodes[n].params["shape"])
                                               for n in inputs.values()])
    return ImportResult(project, state, ["the project recorded in the file was restored, with the file's weights",
                                         *notes], inputs, out, metadata=meta)


def save_imported(result: ImportResult, out_path: str | Path) -> tuple[Path, Path]:
    """Write the project to ``out_path`` and its weights beside it (``weights_path_for``),
    each atomically; the weights first, so the project never names missing weights."""
    out = Path(out_path)
    weights = weights_path_for(out)
    save_tensors(result.state, weights, result.weights_metadata())
    save_project(result.project, out)
    return out, weights


def compare_with_onnxruntime(result: ImportResult, model: str | Path | bytes | None = None,
                             batch: int = 3, seed: int = 0) -> float:
    """The largest difference (``onnx_compare.onnxruntime_difference``) between onnxruntime
    running the ONNX model (default: the imported file) and the imported graph with its
    weights, on random inputs of ``batch`` samples. Raises ``OnnxImportError`` when
    onnxruntime cannot load or run the model, or gives another shape."""
    graph = result.project.graph
    a = analyze(graph)
    net = compile_graph(graph, a).eval()
    apply_weights(net, result.state, "imported weights")
    if model is None:
        model = result.converted if result.converted is not None else result.source
    return onnxruntime_difference(model, net, graph, a, result.inputs,
                                  output=result.output or None, batch=batch, seed=seed,
                                  error=OnnxImportError, checking="the import")


# -- loading ------------------------------------------------------------------------------
def _load(path: Path, limit: int):
    """The checked model, and ``(its serialized form, a note)`` when it was converted from
    an older opset (None otherwise)."""
    raw = read_bytes(path, OnnxFileError, "an ONNX file")
    try:
        model = onnx.load_from_string(raw)
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError) as e:
        raise OnnxFileError(f"is not an ONNX model (the file does not parse: {first_line(e)})",
                            str(path)) from None
    if not model.ir_version or not model.HasField("graph") or not (model.graph.node or model.graph.output):
        raise OnnxFileError("is not an ONNX model (it holds no graph)", str(path))
    try:
        opset = check_opset(model)
    except ValueError as e:
        raise OnnxImportError(str(e), str(path)) from None
    bad = undecodable_name(model)
    if bad is not None:
        raise OnnxFileError(f"is not a valid ONNX model: {bad} is not valid UTF-8 text", str(path))
    # every tensor (initializers, Constant values, in subgraphs and functions) is checked,
    # and external data read from the model's own folder only, before anything uses them
    prepare_tensors(model, path.parent, limit, OnnxFileError, str(path))
    if model.functions:
        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as e:  # onnx raises several types here
            raise OnnxFileError(f"its local functions cannot be inlined: {e}", str(path)) from e
    converted = None
    if opset < CONVERT_BELOW:
        model, converted = _convert(model, opset, path)
    # shape inference is a help (declared shapes to check against), not a requirement; no
    # data propagation: it would compute a Range of 10^15 values to learn a shape
    with contextlib.suppress(onnx.shape_inference.InferenceError, RuntimeError, ValueError, MemoryError):
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=False)
    return model, converted


def _convert(model, opset: int, path: Path):
    """``model`` converted to opset ``CONVERT_BELOW`` with onnx's version converter, and
    ``(its bytes, a note)``; the model unchanged (and a note saying why) where the converter
    fails, so its operators are read with their old semantics."""
    try:
        if model.ir_version < 4:
            # before IR 4 an initializer had to be an input too; the converter holds files
            # that skip that to the old rule and refuses them
            model = onnx.ModelProto.FromString(model.SerializeToString())
            model.ir_version = 4
        new = onnx.version_converter.convert_version(model, CONVERT_BELOW)
        raw = new.SerializeToString()
    except Exception as e:  # the converter raises several types, RuntimeError mostly
        return model, (None, f"the model of operator set {opset} could not be converted to operator set "
                             f"{CONVERT_BELOW} ({first_line(e)[:200]}); its operators were read as they are")
    return new, (raw, f"the model was converted from operator set {opset} to {CONVERT_BELOW}")


# -- the walk -----------------------------------------------------------------------------
_FLOAT_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}
_INT_TYPES = {6: "int32", 7: "int64", 2: "uint8", 3: "int8", 5: "int16", 4: "uint16"}


class _Importer(GraphBuilder):
    """The walk over the whole model: its inputs, its nodes in order (each taken by
    ``GraphBuilder._convert``), the output, pruning, blocks, and the ``ImportResult``."""

    # ---- the walk
    def run(self) -> ImportResult:
        g = self.model.graph
        names = [o.name for o in g.output]
        if self.output_name is None and len(names) != 1:
            raise OnnxImportError(f"the model has {len(names)} outputs ({', '.join(map(repr, names))}); "
                                  "a NetCanvas model has exactly one: choose one to import", str(self.path))
        if self.output_name is not None and self.output_name not in names:
            raise OnnxImportError(f"the model has no output {self.output_name!r}; its outputs are "
                                  + ", ".join(map(repr, names)), str(self.path))
        self.output_info = g.output[names.index(self.output_name)] if self.output_name else g.output[0]
        self._check_nodes()
        for init in g.initializer:
            self.values[init.name] = Const(onnx.numpy_helper.to_array(init))
        if len(g.sparse_initializer):
            raise OnnxImportError("the model stores sparse initializers, which NetCanvas does not "
                                  "read", str(self.path))
        needed = self._needed()
        inputs = [i for i in g.input if i.name not in self.values]
        for info in inputs:
            if info.name not in needed:
                self.notes.append(f"input {info.name!r} does not feed the output and was left out")
        self._make_inputs([i for i in inputs if i.name in needed])
        for index, node in enumerate(g.node):
            label = self.label(node, index)
            self.label_op[label] = node.op_type
            scope = torch_scope(node)
            if scope is not None:
                self.scopes[label] = scope
            if not (set(node.output) & needed):
                continue
            self._convert(node, label)
        if self.failures:
            raise self._failure_error()
        out_name = self.output_info.name
        out = self._output(out_name)
        onnx_ops.merge_stacked_recurrent(self)
        onnx_ops.merge_slice_splits(self)
        self._prune(out.node)
        if len(self.inputs) == 1 and self.chains:
            try:
                made = with_blocks(self.graph, self.state, self.chains, out.node)
            except Exception as e:  # blocks are a help: the flat graph is the import, whatever failed
                made = None
                self.notes.append(f"no blocks were made from repeated structure ({type(e).__name__}: "
                                  f"{first_line(e)[:200]})")
            if made is not None:
                self.graph, self.block_state = made
                (name, old), = self.inputs.items()
                new = next(n.id for n in self.graph.nodes.values() if n.type == "Input")
                self.inputs, self.shapes[new] = {name: new}, self.shapes[old]
                blocks = ", ".join(self.graph.blocks)
                self.notes.append(f"{len(self.graph.blocks)} block{'s' if len(self.graph.blocks) != 1 else ''} "
                                  f"made from repeated structure: {blocks}")
        return self._result(out, out_name)

    def _check_nodes(self) -> None:
        """Every node against its operator's schema, before any converter sees it."""
        problems = malformed_nodes(self.model.graph, self.opset, self.label)
        if problems:
            parts = [f"{label!r} ({op}: {reason})" for label, op, reason in problems[:10]]
            more = f" and {len(problems) - 10} more" if len(problems) > 10 else ""
            n = len(problems)
            raise OnnxImportError(f"the model is malformed: {n} node{'s do' if n > 1 else ' does'} not "
                                  "follow the ONNX standard: " + ", ".join(parts) + more, str(self.path), problems)

    def _needed(self) -> set[str]:
        """Names of the tensors the output depends on (nodes feeding nothing are skipped)."""
        producer = {o: n for n in self.model.graph.node for o in n.output}
        needed, stack = set(), [self.output_info.name]
        while stack:
            name = stack.pop()
            if name in needed:
                continue
            needed.add(name)
            node = producer.get(name)
            if node is not None:
                stack.extend(i for i in node.input if i)
                for a in node.attribute:  # names a subgraph reads from the outer scope
                    for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                        stack.extend(outer_names(sub))
        skipped = sum(1 for n in self.model.graph.node if not (set(n.output) & needed))
        if skipped:
            self.notes.append(f"{skipped} node{'s' if skipped > 1 else ''} that do not feed the "
                              "output were left out")
        return needed

    def _make_inputs(self, inputs) -> None:
        for info in inputs:
            t = info.type.tensor_type
            elem = t.elem_type
            if elem not in _FLOAT_TYPES and elem not in _INT_TYPES:
                kind = type_name(elem) if elem else "unknown"
                raise OnnxImportError(f"input {info.name!r} holds {kind} values; NetCanvas inputs are "
                                      "numbers", str(self.path))
            dims = list(t.shape.dim) if t.HasField("shape") else None
            given = self.input_shapes.get(info.name)
            if given is not None:
                sample = [int(d) for d in given]
            else:
                if dims is None or len(dims) < 2:
                    rank = "unknown" if dims is None else str(len(dims))
                    raise OnnxImportError(
                        f"input {info.name!r} has rank {rank}; NetCanvas needs [batch, ...] with at "
                        "least one dimension besides the batch (give its shape to import it)",
                        str(self.path))
                sample = []
                for k, d in enumerate(dims[1:], start=1):
                    if not d.HasField("dim_value") or d.dim_value <= 0:
                        raise OnnxImportError(
                            f"input {info.name!r} has a dynamic dimension "
                            f"{d.dim_param or '?'!r} at axis {k}; NetCanvas inputs have a fixed shape "
                            "(only the batch may vary): give its shape to import it", str(self.path))
                    sample.append(int(d.dim_value))
            values = 1
            for k, d in enumerate(sample, start=1):
                values *= d
                if not 1 <= d <= 2 ** 31 - 1:
                    raise OnnxImportError(f"input {info.name!r} has size {d} at axis {k}; the valid range "
                                          f"is 1 to {2 ** 31 - 1}", str(self.path))
                if values * 4 > self.limit:
                    raise OnnxImportError(f"input {info.name!r} has samples of shape {sample}, more than "
                                          f"the import limit of {gigabytes(self.limit)} each", str(self.path))
            if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
                self.fixed_batch = int(dims[0].dim_value)
                self.notes.append(f"input {info.name!r} has a fixed batch size of "
                                  f"{dims[0].dim_value}; the imported model takes any batch size")
            if elem in _INT_TYPES:
                self.notes.append(f"input {info.name!r} holds {_INT_TYPES[elem]} values; NetCanvas "
                                  "feeds them as floats (an Embedding casts them back)")
            base = sanitize(info.name) or "input"
            node_id, k = base, 0
            while node_id in self.graph.nodes or id_problem(node_id):
                k += 1
                node_id = f"{base}_{k}"
            self.graph.nodes[node_id] = Node(node_id, "Input", {"shape": sample})
            self.shapes[node_id] = tuple(sample)
            self.values[info.name] = plain(node_id, self.true_shape(node_id))
            self.inputs[info.name] = node_id

    def _failure_error(self) -> OnnxImportError:
        n = len(self.failures)
        parts = [f"{label!r} ({op}{': ' + reason if reason else ''})" for label, op, reason in self.failures]
        message = f"cannot import {n} node{'s' if n > 1 else ''}: " + ", ".join(parts)
        if all(reason is None for _, _, reason in self.failures):
            message += "; NetCanvas has no layer that does what they do"
        return OnnxImportError(message, str(self.path), self.failures)

    def _output(self, name: str) -> Tensor:
        value = self.values.get(name)
        if value is None:
            raise OnnxImportError(f"no node produces the output {name!r}", str(self.path))
        try:
            out = self.materialize(value, "the output")
        except Unsupported as u:
            for blamed in u.blame or ["output " + name]:
                self._fail(blamed, self.label_op.get(blamed, "output"), u.reason)
            raise self._failure_error() from None
        except Poisoned:  # pragma: no cover - failures were raised before
            raise self._failure_error() from None
        if out.node not in self.graph.nodes or self.graph.nodes[out.node].type == "Input":
            out = self.add(name, "Identity", {}, [out.node])  # an Input, or a port after the first
        declared = [d.dim_value if d.HasField("dim_value") else None
                    for d in self.output_info.type.tensor_type.shape.dim]
        ours = list(self.shapes[out.node])
        if declared and (len(declared) != len(ours) + 1 or any(
                d is not None and d != o for d, o in zip(declared[1:], ours))):
            raise OnnxImportError(f"the imported graph gives samples of shape {ours}, but the model "
                                  f"declares its output as {declared}", str(self.path))
        return out

    def _prune(self, output: str) -> None:
        keep, stack = {output}, [output]
        while stack:
            for e in self.graph.incoming(stack.pop()):
                if e.source not in keep:
                    keep.add(e.source)
                    stack.append(e.source)
        for node_id in [n for n in self.graph.nodes if n not in keep]:
            if self.graph.nodes[node_id].type == "Input":
                self.notes.append(f"input {node_id!r} does not feed the output and was left out")
            del self.graph.nodes[node_id]
            self.state.pop(node_id, None)
        self.graph.edges = [e for e in self.graph.edges if e.source in keep and e.target in keep]
        self.inputs = {k: v for k, v in self.inputs.items() if v in keep}

    def _result(self, out: Tensor, out_name: str) -> ImportResult:
        graph = self.graph
        a = analyze(graph)
        if not a.ok:  # a bug here, not a problem with the file: say so plainly
            raise OnnxImportError("the imported graph does not validate: "
                                  + "; ".join(str(i) for i in a.errors), str(self.path))
        if a.total_params * 4 > self.limit:  # before compile_graph allocates them
            raise OnnxImportError(f"the imported model has {a.total_params:,} parameters "
                                  f"({gigabytes(a.total_params * 4)}), more than the import limit of "
                                  f"{gigabytes(self.limit)}", str(self.path))
        net = compile_graph(graph, a)
        state: dict[str, torch.Tensor] = {}
        for key, target in net.state_dict().items():
            node_id, _, name = key.partition(".")
            if self.block_state is not None:
                given = self.block_state.get(key)
                given = None if given is None else given.numpy()
            else:
                given = self.state.get(node_id, {}).get(name)
            if given is None:
                if name != "num_batches_tracked":
                    raise OnnxImportError(f"the import found no value for {key}", str(self.path))
                state[key] = target.clone()
                continue
            tensor = torch.from_numpy(np.ascontiguousarray(given)).to(target.dtype)
            if tuple(tensor.shape) != tuple(target.shape):
                raise OnnxImportError(f"{key} has shape {list(tensor.shape)}, the layer needs "
                                      f"{list(target.shape)}", str(self.path))
            state[key] = tensor
        for node_id, position in layered_layout(graph).items():
            graph.nodes[node_id].position = position
        name = self.model.graph.name or self.path.stem
        if not name or name in ("main_graph", "torch_jit", "torch-jit-export", "tf2onnx"):
            name = self.path.stem
        project = Project(graph, name)
        props = {p.key: p.value for p in self.model.metadata_props
                 if isinstance(p.key, str) and isinstance(p.value, str)}
        meta, dataset, notes = imported_metadata(props, [self.shapes[i] for i in self.inputs.values()])
        self.notes.extend(notes)
        if dataset is not None:
            project.dataset = dataset
        else:
            _bundled_data_for(project, graph)
        return ImportResult(project, state, self.notes, dict(self.inputs), out_name, metadata=meta)


# Input shapes a bundled dataset fits as it is: an imported model can be trained at once
_BUNDLED = {(1, 28, 28): "digits28", (784,): "digits28", (1, 8, 8): "digits", (64,): "digits",
            (8, 8): "digits", (4,): "iris", (2,): "moons"}


def _bundled_data_for(project: Project, graph: Graph) -> None:
    inputs = [n for n in graph.nodes.values() if n.type == "Input"]
    if len(inputs) == 1:
        name = _BUNDLED.get(tuple(inputs[0].params.get("shape") or ()))
        if name:
            project.dataset = {**project.dataset, "name": name}
