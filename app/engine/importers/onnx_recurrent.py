"""ONNX LSTM, GRU and RNN as NetCanvas' batch-first recurrent layers.

ONNX orders the gates differently from torch (LSTM: ONNX i, o, f, c / torch i, f, g, o;
GRU: ONNX z, r, h / torch r, z, n) and splits the bias into the input and recurrent halves
as torch does. With ``layout=0`` ONNX reads ``[time, batch, features]`` and writes
``[time, directions, batch, hidden]``: the Transposes converters put around it cancel
against these views. Stacked layers that came from one torch module (one name scope) are
merged back into one node with ``num_layers``.
"""

from __future__ import annotations

import numpy as np

from .onnx_values import Const, Filled, N, Tensor, Unsupported, reshape, transpose

_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_TORCH_ORDER = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}
_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}


def _zero(value) -> bool:
    if value is None:
        return True
    if isinstance(value, Filled):
        return value.value == 0.0
    if isinstance(value, Const):
        return not np.any(value.array)
    return False


def _reorder(w: np.ndarray, kind: str, hidden: int) -> np.ndarray:
    blocks = w.reshape(_GATES[kind], hidden, *w.shape[1:])
    return np.ascontiguousarray(np.concatenate([blocks[i] for i in _TORCH_ORDER[kind]]))


def _recurrent(kind: str):
    def convert(ctx, node, ins):
        label = ctx.current_label
        hidden = ctx.attr(node, "hidden_size")
        direction = ctx.attr(node, "direction", "forward")
        layout = ctx.attr(node, "layout", 0)
        if direction not in ("forward", "bidirectional"):
            raise Unsupported(f"runs the sequence in direction {direction!r}; NetCanvas runs it "
                              "forwards (or both ways)")
        dirs = 2 if direction == "bidirectional" else 1
        acts = ctx.attr(node, "activations", None)
        if acts is not None and [a.lower() for a in acts] != [a.lower() for a in _ACTIVATIONS[kind] * dirs]:
            raise Unsupported(f"uses activations {acts}; torch's {kind} uses {_ACTIVATIONS[kind]}")
        if ctx.attr(node, "clip", None) is not None:
            raise Unsupported("clips the cell values")
        if kind == "LSTM" and ctx.attr(node, "input_forget", 0):
            raise Unsupported("couples the input and forget gates")
        if kind == "GRU" and not ctx.attr(node, "linear_before_reset", 0):
            raise Unsupported("applies the reset gate before the linear map "
                              "(linear_before_reset=0); torch's GRU does it after")
        x = ins[0]
        if not isinstance(x, Tensor):
            t = ctx.materialize(x, label)
        else:
            t = ctx.materialize(transpose(x, [1, 0, 2], label) if layout == 0 else x, label)
        if len(ctx.true_shape(t.node)) != 3:
            raise Unsupported("reads data that is not a sequence")
        w, r = _const(ins[1], "W"), _const(ins[2], "R")
        gates = _GATES[kind]
        if hidden is None and w.ndim == 3:
            hidden = w.shape[1] // gates
        features = ctx.true_shape(t.node)[2]
        if not hidden or w.shape != (dirs, gates * hidden, features) or r.shape != (dirs, gates * hidden, hidden):
            raise Unsupported(f"has weights W {list(w.shape)} and R {list(r.shape)}; {direction} with "
                              f"hidden_size {hidden} on {features} features needs W "
                              f"{[dirs, gates * (hidden or 0), features]} and R "
                              f"{[dirs, gates * (hidden or 0), hidden or 0]}")
        b = _const(ins[3], "B") if len(ins) > 3 and ins[3] is not None else \
            np.zeros((dirs, 2 * gates * hidden), np.float32)
        if b.shape != (dirs, 2 * gates * hidden):
            raise Unsupported(f"has a bias B {list(b.shape)}; it needs {[dirs, 2 * gates * hidden]}")
        if len(ins) > 4 and ins[4] is not None:
            raise Unsupported("takes sequence lengths; NetCanvas runs every sequence in full")
        for i, what in ((5, "initial hidden state"), (6, "initial cell state"), (7, "peephole weights")):
            if len(ins) > i and not _zero(ins[i]):
                raise Unsupported(f"has a non-zero {what}")
        state = {}
        for d in range(dirs):
            sfx = "_reverse" if d else ""
            state[f"weight_ih_l0{sfx}"] = _reorder(w[d], kind, hidden)
            state[f"weight_hh_l0{sfx}"] = _reorder(r[d], kind, hidden)
            state[f"bias_ih_l0{sfx}"] = _reorder(b[d][: gates * hidden], kind, hidden)
            state[f"bias_hh_l0{sfx}"] = _reorder(b[d][gates * hidden:], kind, hidden)
        params = {"hidden_size": int(hidden)}
        if dirs == 2:
            params["bidirectional"] = True
        out = ctx.add(label, kind, params, [t.node], {k: v.astype(np.float32) for k, v in state.items()})
        steps = ctx.true_shape(out.node)[1]
        seq = reshape(out, [N, steps, dirs, hidden], label)
        y = transpose(seq, [1, 2, 0, 3], label) if layout == 0 else seq
        outs = [y]
        if len(node.output) > 1 and node.output[1] and ctx.consumers[node.output[1]]:
            if dirs != 1:
                raise Unsupported("uses the final states of both directions (Y_h)")
            last = ctx.add(label, "LastStep", {}, [out.node], suffix="_last")
            outs.append(reshape(last, [1, N, hidden] if layout == 0 else [N, 1, hidden], label))
        if len(node.output) > 2 and node.output[2] and ctx.consumers[node.output[2]]:
            raise Unsupported("uses the final cell state (Y_c); NetCanvas' LSTM gives the sequence")
        return outs

    return convert


def _const(value, what: str) -> np.ndarray:
    if isinstance(value, Const):
        return value.array
    raise Unsupported(f"its {what} is not a constant")


def merge_stacked_recurrent(ctx) -> None:
    """Layers B fed only by layer A of the same type, size and name scope, with nothing
    else reading A, become layers 2, 3, ... of A (as torch's num_layers writes them)."""
    graph = ctx.graph
    changed = True
    while changed:
        changed = False
        for b in list(graph.nodes.values()):
            if b.type not in _GATES:
                continue
            edges = graph.incoming(b.id)
            if len(edges) != 1:
                continue
            a = graph.nodes[edges[0].source]
            if (a.type != b.type or len(graph.outgoing(a.id)) != 1
                    or ctx.bases.get(a.id) != ctx.bases.get(b.id)
                    or a.params.get("hidden_size") != b.params.get("hidden_size")
                    or a.params.get("bidirectional", False) != b.params.get("bidirectional", False)
                    or a.params.get("dropout", 0.0) or b.params.get("dropout", 0.0)):
                continue
            base = a.params.get("num_layers", 1)
            for key, value in ctx.state.pop(b.id).items():
                name, _, rest = key.rpartition("_l")
                layer, _, sfx = rest.partition("_")
                ctx.state[a.id][f"{name}_l{int(layer) + base}" + (f"_{sfx}" if sfx else "")] = value
            a.params["num_layers"] = base + b.params.get("num_layers", 1)
            graph.edges = [e for e in graph.edges if e.target != b.id]
            graph.edges = [type(e)(a.id, e.target, e.target_port) if e.source == b.id else e
                           for e in graph.edges]
            del graph.nodes[b.id]
            ctx.shapes[a.id] = ctx.shapes.pop(b.id)
            changed = True
            break


RECURRENT = {"LSTM": _recurrent("LSTM"), "GRU": _recurrent("GRU"), "RNN": _recurrent("RNN")}
