"""Broadcasting merges, MatMul and the attention layers against torch: shapes, counts,
messages, and outputs equal to torch's own modules (causal masks against explicit ones)."""

from __future__ import annotations

import itertools

import onnx
import pytest
import torch
from torch import nn

from app.engine.compiler import compile_graph
from app.engine.export.onnx_export import export_onnx
from app.engine.graph import Edge, Graph, Node
from app.engine.inference import analyze, resolve_params
from app.engine.layers import CATALOGUE, ShapeError
from app.engine.project import Project


def params(name: str, given: dict) -> dict:
    resolved, problems = resolve_params(CATALOGUE[name], given)
    assert not problems, problems
    return resolved


def infer(name: str, shapes, given=None):
    return CATALOGUE[name].infer([tuple(s) for s in shapes], params(name, given or {}))


def build(name: str, shapes, given=None) -> nn.Module:
    return CATALOGUE[name].build([tuple(s) for s in shapes], params(name, given or {})).eval()


def count(name: str, shapes, given=None) -> int:
    return CATALOGUE[name].count([tuple(s) for s in shapes], params(name, given or {}))


def shape_error(name: str, shapes, given=None) -> ShapeError:
    with pytest.raises(ShapeError) as info:
        infer(name, shapes, given)
    return info.value


def graph_of(name: str, shapes, given=None, source_port: int = 0) -> Graph:
    """Inputs of ``shapes`` into one ``name`` node, whose port ``source_port`` feeds an
    Identity (the model's output)."""
    g = Graph()
    for k, shape in enumerate(shapes):
        g.add_node(Node(f"in{k}", "Input", {"shape": list(shape)}))
    g.add_node(Node("layer", name, dict(given or {})))
    g.add_node(Node("out", "Identity"))
    for k in range(len(shapes)):
        g.add_edge(Edge(f"in{k}", "layer", k))
    g.add_edge(Edge("layer", "out", 0, source_port))
    return g


def onnx_ops(name: str, shapes, tmp_path, given=None) -> list[str]:
    project = Project(graph=graph_of(name, shapes, given), name="ops")
    export_onnx(project, tmp_path / "m.onnx")
    return [n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node]


# -- broadcasting -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Add", "Multiply", "Subtract", "Divide"])
@pytest.mark.parametrize("shapes, expected", [
    (((64, 8, 8), (64, 1, 1)), (64, 8, 8)),  # squeeze-and-excitation gate
    (((4, 8), (8,)), (4, 8)),
    (((8,), (4, 8)), (4, 8)),
    (((3, 1, 5), (4, 1)), (3, 4, 5)),
    (((2, 3), (2, 3)), (2, 3)),
])
def test_broadcast_shapes_and_values_are_torchs_after_the_batch(name, shapes, expected):
    assert infer(name, shapes) == expected
    module = build(name, shapes)
    torch.manual_seed(0)
    # a batch of 2 equal to a sample's first size: padding before the batch would go unnoticed
    xs = [torch.rand(2, *s) + 0.5 for s in shapes]
    op = {"Add": torch.add, "Multiply": torch.mul, "Subtract": torch.sub, "Divide": torch.div}[name]
    want = torch.stack([op(xs[0][i], xs[1][i]) for i in range(2)])
    assert torch.equal(module(*xs), want)
    assert count(name, shapes) == 0


def test_add_of_three_inputs_of_different_ranks():
    shapes = ((6, 4, 5), (6, 1, 1), (5,))
    assert infer("Add", shapes) == (6, 4, 5)
    xs = [torch.randn(3, *s) for s in shapes]
    want = torch.stack([xs[0][i] + xs[1][i] + xs[2][i] for i in range(3)])
    assert torch.allclose(build("Add", shapes)(*xs), want)


@pytest.mark.parametrize("name", ["Add", "Multiply", "Subtract", "Divide"])
def test_shapes_that_do_not_broadcast_are_named(name):
    e = shape_error(name, [(64, 8, 8), (32, 1, 1)])
    assert str(e) == (f"{name} needs inputs that broadcast (aligned from the right, each size equal "
                      "or 1); received [64, 8, 8] and [32, 1, 1], which differ in dimension -3 "
                      "(64 and 32)")


def test_the_conflicting_pair_is_named_among_several_inputs():
    e = shape_error("Add", [(4, 1), (1, 5), (3, 5)])
    assert "received [4, 1] and [3, 5]" in str(e)
    e = shape_error("Multiply", [(4,), (4,), (5,)])
    assert "received [4] and [5]" in str(e)


def test_same_shapes_compile_as_before(tmp_path):
    """Inputs of one rank: no padding recorded, nothing but the operation itself."""
    for shapes in [((3, 5, 7), (3, 5, 7)), ((64, 8, 8), (64, 1, 1))]:
        module = build("Add", shapes)
        assert module.pads == () and repr(module) == "Add()"
    assert onnx_ops("Add", [(3, 4), (3, 4)], tmp_path) == ["Add"]
    assert onnx_ops("Multiply", [(6, 4, 4), (6, 1, 1)], tmp_path) == ["Mul"]


def test_padding_exports_to_onnx(tmp_path):
    assert "Sub" in onnx_ops("Subtract", [(4, 8), (8,)], tmp_path)


def test_subtract_and_divide_take_exactly_two_inputs():
    g = graph_of("Subtract", [(3,), (3,), (3,)])
    errors = [i.message for i in analyze(g).errors]
    assert errors == ["Subtract needs 2 inputs; received 3"]


# -- MatMul -----------------------------------------------------------------------------------
def _matmul_pairs():
    """Shape pairs of ranks 1 to 4 that torch.matmul takes (K = 3)."""
    shapes = {1: [(3,)], 2: [(4, 3), (3, 5)], 3: [(2, 4, 3), (1, 3, 5), (2, 3, 5)],
              4: [(5, 1, 4, 3), (1, 2, 3, 5)]}
    for ra, rb in itertools.product(range(1, 5), repeat=2):
        for a, b in itertools.product(shapes[ra], shapes[rb]):
            if a[-1] == 3 and (b[0] if len(b) == 1 else b[-2]) == 3:
                yield a, b


@pytest.mark.parametrize("a, b", list(_matmul_pairs()))
def test_matmul_is_torchs_for_each_sample(a, b):
    xa, xb = torch.randn(2, *a), torch.randn(2, *b)
    want = torch.stack([torch.matmul(xa[i], xb[i]) for i in range(2)])
    assert infer("MatMul", [a, b]) == tuple(want.shape[1:])
    assert torch.allclose(build("MatMul", [a, b])(xa, xb), want, atol=1e-6)


def test_matmul_errors_name_both_shapes():
    e = shape_error("MatMul", [(4, 3), (4, 5)])
    assert "received [4, 3] and [4, 5] (3 and 4)" in str(e)
    e = shape_error("MatMul", [(2, 4, 3), (5, 3, 2)])
    assert "before the last two" in str(e) and "[2, 4, 3] and [5, 3, 2]" in str(e)
    e = shape_error("MatMul", [(3,), (4,)])
    assert "its only dimension" in str(e)


# -- MultiheadAttention -----------------------------------------------------------------------
def torch_mha(ours: nn.Module, e: int, heads: int, **kw) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(e, heads, batch_first=True, **kw).eval()
    ref.load_state_dict(ours.state_dict())
    return ref


def test_self_attention_is_torchs():
    ours = build("MultiheadAttention", [(6, 8)], {"num_heads": 2})
    x = torch.randn(3, 6, 8)
    out, weights = ours(x)
    ref_out, ref_weights = torch_mha(ours, 8, 2)(x, x, x)
    assert torch.allclose(out, ref_out, atol=1e-6) and torch.allclose(weights, ref_weights, atol=1e-6)
    assert infer("MultiheadAttention", [(6, 8)], {"num_heads": 2}) == [(6, 8), (6, 6)]


def test_cross_attention_with_kdim_vdim_and_extra_keys_is_torchs():
    given = {"num_heads": 3, "add_bias_kv": True, "add_zero_attn": True, "bias": False}
    shapes = [(5, 12), (7, 6), (7, 10)]
    ours = build("MultiheadAttention", shapes, given)
    q, k, v = (torch.randn(2, *s) for s in shapes)
    ref = torch_mha(ours, 12, 3, kdim=6, vdim=10, add_bias_kv=True, add_zero_attn=True, bias=False)
    out, weights = ours(q, k, v)
    ref_out, ref_weights = ref(q, k, v)
    assert torch.allclose(out, ref_out, atol=1e-6) and torch.allclose(weights, ref_weights, atol=1e-6)
    assert infer("MultiheadAttention", shapes, given) == [(5, 12), (5, 9)]  # 7 keys + bias + zero


@pytest.mark.parametrize("shapes", [[(6, 8)], [(4, 8), (6, 8), (6, 8)], [(7, 8), (5, 8), (5, 8)]])
def test_causal_attention_equals_an_explicit_mask(shapes):
    ours = build("MultiheadAttention", shapes, {"num_heads": 2, "causal": True})
    xs = [torch.randn(2, *s) for s in shapes]
    q, k, v = xs * 3 if len(xs) == 1 else xs
    t, s = q.shape[1], k.shape[1]
    mask = torch.tensor([[j > i for j in range(s)] for i in range(t)])
    ref_out, ref_weights = torch_mha(ours, 8, 2)(q, k, v, attn_mask=mask)
    out, weights = ours(*xs)
    assert torch.allclose(out, ref_out, atol=1e-6) and torch.allclose(weights, ref_weights, atol=1e-6)
    assert (weights[:, 0, 1:] == 0).all()  # the first position sees only itself


def test_two_inputs_are_refused_with_a_reason():
    e = shape_error("MultiheadAttention", [(4, 8), (4, 8)], {"num_heads": 2})
    assert str(e).startswith("MultiheadAttention takes 1 input (self-attention) or 3 (query, key, "
                             "value); received 2")


def test_attention_shape_errors():
    e = shape_error("MultiheadAttention", [(4, 10)], {"num_heads": 3})
    assert e.param == "num_heads" and "10" in str(e) and "3" in str(e)
    e = shape_error("MultiheadAttention", [(4, 8), (5, 8), (6, 8)], {"num_heads": 2})
    assert "key [5, 8] and value [6, 8]" in str(e)
    e = shape_error("MultiheadAttention", [(8,)], {"num_heads": 2})
    assert "[sequence, features]" in str(e) and "received [8]" in str(e)


@pytest.mark.parametrize("shapes, given", [
    ([(5, 16)], {"num_heads": 4}),
    ([(5, 16)], {"num_heads": 4, "bias": False}),
    ([(5, 12), (7, 6), (7, 10)], {"num_heads": 3}),
    ([(5, 12), (7, 6), (7, 10)], {"num_heads": 2, "add_bias_kv": True}),
    ([(3, 6), (4, 6), (4, 6)], {"num_heads": 6, "add_bias_kv": True, "bias": False}),
])
def test_attention_count_is_torchs(shapes, given):
    module = build("MultiheadAttention", shapes, given)
    assert count("MultiheadAttention", shapes, given) == sum(p.numel() for p in module.parameters())


def test_the_weights_port_compiles_and_exports(tmp_path):
    g = graph_of("MultiheadAttention", [(6, 8)], {"num_heads": 2, "causal": True}, source_port=1)
    a = analyze(g)
    assert a.ok, a.errors
    assert a.shapes["out"] == (6, 6)
    model = compile_graph(g, a).eval()
    x = torch.randn(2, 6, 8)
    assert torch.equal(model(x), model.layer(x)[1])
    export_onnx(Project(graph=g, name="weights"), tmp_path / "w.onnx")  # raises unless ort agrees


# -- transformer layers -----------------------------------------------------------------------
ENCODER_CASES = [
    ((7, 16), {"nhead": 4, "dim_feedforward": 32}),
    ((7, 12), {"nhead": 3, "dim_feedforward": 24, "activation": "gelu", "norm_first": True}),
    ((5, 8), {"nhead": 2, "dim_feedforward": 16, "bias": False, "layer_norm_eps": 1e-6}),
    ((6, 8), {"nhead": 2, "dim_feedforward": 16, "causal": True}),
    ((6, 8), {"nhead": 1, "dim_feedforward": 5, "causal": True, "norm_first": True}),
]


def torch_kwargs(given: dict) -> dict:
    p = dict(given)
    p.pop("causal", None)
    return {"dropout": 0.1, **p}


@pytest.mark.parametrize("shape, given", ENCODER_CASES)
def test_encoder_layer_is_torchs(shape, given):
    ours = build("TransformerEncoderLayer", [shape], given)
    ref = nn.TransformerEncoderLayer(shape[1], batch_first=True, **torch_kwargs(given)).eval()
    ref.load_state_dict(ours.state_dict())  # strict: the same names and shapes
    x = torch.randn(3, *shape)
    mask = nn.Transformer.generate_square_subsequent_mask(shape[0]) if given.get("causal") else None
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x, src_mask=mask), atol=1e-5)
    assert count("TransformerEncoderLayer", [shape], given) == sum(p.numel() for p in ref.parameters())


DECODER_CASES = [
    ((6, 16), (9, 16), {"nhead": 4, "dim_feedforward": 32}),
    ((5, 12), (4, 12), {"nhead": 2, "dim_feedforward": 20, "norm_first": True, "activation": "gelu",
                        "causal": False}),
    ((3, 8), (7, 8), {"nhead": 8, "dim_feedforward": 8, "bias": False}),
]


@pytest.mark.parametrize("target, memory, given", DECODER_CASES)
def test_decoder_layer_is_torchs(target, memory, given):
    ours = build("TransformerDecoderLayer", [target, memory], given)
    ref = nn.TransformerDecoderLayer(target[1], batch_first=True, **torch_kwargs(given)).eval()
    ref.load_state_dict(ours.state_dict())
    t, m = torch.randn(2, *target), torch.randn(2, *memory)
    causal = given.get("causal", True)
    mask = nn.Transformer.generate_square_subsequent_mask(target[0]) if causal else None
    with torch.no_grad():
        assert torch.allclose(ours(t, m), ref(t, m, tgt_mask=mask), atol=1e-5)
    assert count("TransformerDecoderLayer", [target, memory], given) == \
        sum(p.numel() for p in ref.parameters())


def test_transformer_shape_errors():
    e = shape_error("TransformerEncoderLayer", [(5, 10)], {"nhead": 4})
    assert e.param == "nhead"
    e = shape_error("TransformerDecoderLayer", [(5, 8), (6, 4)], {"nhead": 2})
    assert "target [5, 8] and memory [6, 4]" in str(e)
    e = shape_error("TransformerEncoderLayer", [(2, 5, 8)], {"nhead": 2})
    assert "received [2, 5, 8]" in str(e)


def test_causal_encoder_exports_to_onnx(tmp_path):
    g = graph_of("TransformerEncoderLayer", [(6, 8)], {"nhead": 2, "dim_feedforward": 16, "causal": True})
    export_onnx(Project(graph=g, name="causal"), tmp_path / "c.onnx")  # raises unless ort agrees
