"""The graph an ONNX import builds, and how one ONNX node becomes values.

``GraphBuilder`` holds the import's state (the NetCanvas graph, sample shapes, weights, the
value of every ONNX tensor, the failures so far) and the helpers the converters
(``onnx_ops`` and the modules it uses) call on it: ``attr``, ``materialize``, ``add``,
``add_ports``, ``new_id``. Its ``_convert`` takes one ONNX node: a constant is folded with
onnx's reference implementation, anything else goes to its converter, and a node that
cannot be taken is recorded as a failure. ``onnx_import._Importer`` walks the whole model
with it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx.reference import ReferenceEvaluator

from ..errors import NetCanvasError, first_line
from ..graph import Edge, Graph, Node, id_problem
from ..inference import resolve_params
from ..layers import get_spec
from ..layers.spec import ShapeError
from . import onnx_ops
from .onnx_blocks import module_chain
from .onnx_checks import DEFAULT_MAX_BYTES, folded_size, too_big
from .onnx_errors import OnnxImportError
from .onnx_names import base_id, sanitize
from .onnx_views import pending_layers, view_layers
from .onnx_values import Const, Filled, N, NotExact, Pending, Poison, Poisoned, Tensor, Unsupported, plain, show_shape

_RANDOM = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
           "Multinomial", "Bernoulli"}


class GraphBuilder:
    """The import's state and the helpers converters call on it (see the module docstring)."""

    def __init__(self, model, path: Path, input_shapes: dict[str, list[int]], output_name: str | None,
                 limit: int = DEFAULT_MAX_BYTES):
        self.limit = limit
        self.folded = 0                              # bytes of constants folded so far
        self.output_name = output_name
        self.model = model
        self.path = path
        self.input_shapes = input_shapes
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.graph = Graph()
        self.shapes: dict[str, tuple] = {}          # node id -> sample shape (no batch)
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.values: dict[str, Any] = {}
        self.failures: list[tuple[str, str, str | None]] = []
        self.failed: set[str] = set()
        self.notes: list[str] = []
        self.bases: dict[str, str] = {}              # node id -> the base its name came from
        self.label_op: dict[str, str] = {}
        self.fixed_batch: int | None = None
        self.inputs: dict[str, str] = {}
        self.made_tensor: dict[str, str] = {}       # node id -> the ONNX tensor it first became
        self.current_label = ""
        self.scopes: dict[str, str] = {}            # label -> torch module path, where recorded
        g = model.graph
        self.chains: dict[str, tuple] = {}         # node id -> the torch modules it was called in
        self.current_chain: tuple | None = None
        self.block_state: dict[str, torch.Tensor] | None = None
        self.splits: dict = {}                      # (tensor, axis) -> the Split its slices share
        self.slice_splits: list = []                # (Split id, source node, axis, bounds) made for slices
        self.slicers: dict[str, list] = {}          # tensor -> the Slice nodes reading it
        self.consumers: Counter = Counter()
        self.value_consumers: Counter = Counter()    # not counting Shape / Size
        for node in g.node:
            if node.op_type == "Slice" and node.input:
                self.slicers.setdefault(node.input[0], []).append(node)
            for name in node.input:
                if name:
                    self.consumers[name] += 1
                    if node.op_type not in ("Shape", "Size"):
                        self.value_consumers[name] += 1
        for out in g.output:
            if output_name is None or out.name == output_name:
                self.consumers[out.name] += 1
                self.value_consumers[out.name] += 1

    # ---- helpers for the converters
    def label(self, node, index: int) -> str:
        return node.name or f"<unnamed {node.op_type} node {index}>"

    def attr(self, node, name: str, default: Any = None) -> Any:
        for a in node.attribute:
            if a.name == name:
                value = onnx.helper.get_attribute_value(a)
                if isinstance(value, bytes):
                    return value.decode("utf-8", "replace")
                if isinstance(value, list) and value and isinstance(value[0], bytes):
                    return [v.decode("utf-8", "replace") for v in value]
                return value
        return default

    def slices_of(self, name: str) -> list:
        """The Slice nodes that read the tensor ``name``."""
        return self.slicers.get(name, [])

    def true_shape(self, node_id: str) -> list:
        return [N, *self.shapes[node_id]]

    def materialize(self, value: Any, consumer: str) -> Tensor:
        """``value`` as the plain output of a node, adding a Reshape/Flatten node for a view
        that is a reshape of one; raises ``Unsupported`` for anything else."""
        if isinstance(value, Poison):
            raise Poisoned()
        if isinstance(value, Tensor):
            if value.in_order and value.shape == self.true_shape(value.node):
                return plain(value.node, value.shape)
            if "plain" not in value.cache:
                if value.batch_first:
                    value.cache["plain"] = self._reshape_node(value)
                else:
                    label = value.made_by[0] if value.made_by else f"{value.node}/Transpose"
                    value.cache["plain"] = view_layers(self, value, label)
            return value.cache["plain"]
        if isinstance(value, Pending) and value.kind in ("pad", "scale"):
            return pending_layers(self, value)
        if isinstance(value, Pending):
            raise Unsupported(onnx_ops.PENDING_REASONS.get(value.kind, None), blame=value.origin)
        if value is None:
            raise Unsupported("a required input is missing")
        if isinstance(value, Filled):
            raise Unsupported(f"takes a tensor filled with {value.value:g} (an initial state?) where "
                              "NetCanvas needs the data flowing through the model")
        raise Unsupported("takes a constant where NetCanvas needs the data flowing through the model")

    def _reshape_node(self, t: Tensor) -> Tensor:
        source = self.shapes[t.node]
        target = tuple(t.shape[1:])
        # named after the first node that rearranged it (``flatten/Reshape``), not after
        # the consumer that made it concrete
        label = t.made_by[0] if t.made_by else f"{t.node}/Reshape"
        if any(not isinstance(d, (int, np.integer)) for d in target):
            raise Unsupported(f"reshapes to {show_shape(t.shape)}, which mixes the batch into a "
                              "sample", blame=[label])
        kind, params = "Reshape", {"shape": [int(d) for d in target]}
        for k in range(len(source) - 1):
            if target == tuple(source[:k]) + (int(np.prod(source[k:])),):
                kind, params = "Flatten", {"start_dim": k + 1}
                break
        return self.add(label, kind, params, [t.node])

    def add(self, label: str, kind: str, params: dict, inputs: list[str],
            state: dict[str, np.ndarray] | None = None, suffix: str = "") -> Tensor:
        """A new graph node of type ``kind`` fed by nodes ``inputs``; returns its output."""
        return self.add_ports(label, kind, params, inputs, state, suffix)[0]

    def add_ports(self, label: str, kind: str, params: dict, inputs: list[str],
                  state: dict[str, np.ndarray] | None = None, suffix: str = "") -> list[Tensor]:
        """``add`` for a type with several output ports (Split): one value per port. Port k
        > 0 of node ``n`` is the pseudo-node ``n#k`` (``#`` is in no node id): ``add``
        makes an edge from that port of it."""
        spec = get_spec(kind)
        resolved, problems = resolve_params(spec, params)
        if problems:
            param, message = problems[0]
            raise Unsupported(f"as NetCanvas {kind}{' ' + param if param else ''}: {message}")
        try:
            shapes = spec.port_shapes([self.shapes[i] for i in inputs], resolved)
        except ShapeError as e:
            raise Unsupported(f"as NetCanvas {kind}: {e}") from None
        clean = {p.name: params[p.name] for p in spec.params
                 if p.name in params and (p.required or params[p.name] != p.default
                                          or type(params[p.name]) is not type(p.default))}
        node_id = self.new_id(label, suffix, kind)
        self.graph.nodes[node_id] = Node(node_id, kind, clean)
        for port, src in enumerate(inputs):
            source, _, source_port = src.partition("#")
            self.graph.edges.append(Edge(source, node_id, port, int(source_port or 0)))
        if self.current_chain is not None:
            self.chains[node_id] = self.current_chain
        names = [node_id] + [f"{node_id}#{k}" for k in range(1, len(shapes))]
        for name, shape in zip(names, shapes):
            self.shapes[name] = tuple(int(d) for d in shape)
        if state:
            self.state[node_id] = state
        return [plain(name, self.true_shape(name)) for name in names]

    def new_id(self, label: str, suffix: str = "", kind: str = "node") -> str:
        scope = self.scopes.get(label)
        if scope is not None and len([p for p in label.split("/") if p]) < 2:
            base = (sanitize(scope) or kind.lower()) + suffix
        else:
            base = base_id(label, kind) + suffix
        candidate, k = base, 0
        while candidate in self.graph.nodes or id_problem(candidate):
            k += 1
            candidate = f"{base}_{k}"
        self.bases[candidate] = base
        return candidate

    # ---- one node
    def _convert(self, node, label: str) -> None:
        ins = []
        for name in node.input:
            if not name:
                ins.append(None)
            elif name in self.values:
                ins.append(self.values[name])
            else:
                raise OnnxImportError(f"node {label!r} ({node.op_type}) reads {name!r}, which no node "
                                      "or input produces; the file is not a valid model",
                                      str(self.path))
        op = node.op_type
        self.current_label = label
        self.current_chain = module_chain(node)
        before = set(self.graph.nodes)
        known = node.domain in ("", "ai.onnx") and (op in onnx_ops.CONVERTERS or op in onnx_ops.SYMBOLIC)
        if any(isinstance(v, Poison) for v in ins):
            if not known:
                self._fail(label, op, None)
            self._set(node, [Poison()] * len(node.output))
            return
        try:
            if node.domain not in ("", "ai.onnx"):
                raise Unsupported(f"an operator of domain {node.domain!r}")
            if op == "Constant":
                outs = [Const(onnx_ops.constant_value(self, node))]
            elif all(v is None or isinstance(v, Const) for v in ins) and op not in _RANDOM:
                outs = [Const(a) for a in self._fold(node, ins)]
            elif op in onnx_ops.SYMBOLIC and not any(isinstance(v, (Tensor, Pending)) for v in ins):
                outs = onnx_ops.SYMBOLIC[op](self, node, ins)
            elif op in onnx_ops.CONVERTERS:
                outs = onnx_ops.CONVERTERS[op](self, node, ins)
            else:
                raise Unsupported(None)
        except Poisoned:
            outs = [Poison()] * len(node.output)
        except Unsupported as u:
            for blamed in u.blame or [label]:
                self._fail(blamed, self.label_op.get(blamed, op), u.reason)
            outs = [Poison()] * len(node.output)
        except NotExact as e:
            self._fail(label, op, str(e))
            outs = [Poison()] * len(node.output)
        except NetCanvasError:
            raise
        except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as e:
            # a converter met a case the checks before it did not foresee: name the node
            # rather than show a traceback
            self._fail(label, op, f"cannot be read ({type(e).__name__}: {first_line(e)[:200]})")
            outs = [Poison()] * len(node.output)
        self._set(node, outs)
        for name, value in zip(node.output, outs):
            if isinstance(value, Tensor) and value.node not in before:
                self.made_tensor.setdefault(value.node, name)

    def _set(self, node, outs) -> None:
        for name, value in zip(node.output, list(outs) + [Poison()] * len(node.output)):
            if name:
                self.values[name] = value

    def _fail(self, label: str, op: str, reason: str | None) -> None:
        if label not in self.failed:
            self.failed.add(label)
            self.failures.append((label, op, reason))

    def _fold(self, node, ins) -> list[np.ndarray]:
        feeds = {name: v.array for name, v in zip(node.input, ins) if name}
        size = folded_size(node, [None if v is None else v.array for v in ins], self.opset)
        if self.folded + size > self.limit:
            raise Unsupported(too_big(size, self.folded, self.limit))
        self.folded += size
        try:
            # as a one-node model: the evaluator reads a bare node with the newest opset's
            # operators, whatever opsets it is given
            names = [n for n in node.input if n]
            graph = onnx.helper.make_graph([node], "fold", [onnx.helper.make_value_info(n, onnx.TypeProto())
                                                             for n in dict.fromkeys(names)],
                                           [onnx.helper.make_value_info(n, onnx.TypeProto()) for n in node.output if n])
            one = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", self.opset)])
            evaluator = ReferenceEvaluator(one)
            return [np.asarray(a) for a in evaluator.run(None, feeds)]
        except Exception as e:  # the reference implementation raises many types
            raise Unsupported(f"could not be evaluated as a constant: {first_line(e)}") from e
