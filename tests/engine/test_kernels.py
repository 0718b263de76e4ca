"""Fused Triton kernels against their PyTorch references, and the graph fusion pass.

Without a GPU the kernels run in Triton's interpreter on CPU tensors (conftest sets
TRITON_INTERPRET=1 before they are imported); shapes stay small and odd on purpose.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from app.engine import snapshots
from app.engine.compiler import compile_graph
from app.engine.datasets.base import RawData, prepare
from app.engine.examples import load_example
from app.engine.graph import Edge, Graph, Node
from app.engine.inference import analyze
from app.engine.kernels import policy, runs_triton
from app.engine.kernels.epilogue import affine_act, reference_affine_act
from app.engine.kernels.fuse import activation_of, fuse_graph_module
from app.engine.kernels.fused import FusedAddAct, FusedConv2dAct, FusedInto, FusedLinearAct
from app.engine.kernels.linear import linear_act, reference_linear_act
from app.engine.kernels.loss import cross_entropy, cross_entropy_for, reference_cross_entropy
from app.engine.project import Project
from app.engine.training import Trainer, prepare_run
from app.engine.weights import load_weights, save_weights
from tests.helpers import chain

pytestmark = pytest.mark.skipif(not runs_triton(torch.zeros(1)),
                                reason="Triton cannot run here (not installed, or no TRITON_INTERPRET=1)")

ACTS = ["relu", "leaky_relu", "gelu", "sigmoid", "tanh", "identity"]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def tol(dtype, fp32=1e-5):
    t = fp32 if dtype == torch.float32 else 2e-2
    return {"rtol": t, "atol": t, "scaled": dtype != torch.float32}


def close(got, want, rtol=1e-5, atol=1e-5, scaled=False):
    """Elementwise; with ``scaled`` (fp16/bf16) ``atol`` is relative to ``want``'s largest
    value: a saved half-precision output (as eager saves it too) costs a few of its ulps."""
    want = want.float()
    if scaled:
        atol *= max(1.0, want.abs().max().item())
    torch.testing.assert_close(got.float(), want, rtol=rtol, atol=atol)


def grads(out, inputs, g):
    return torch.autograd.grad(out, [t for t in inputs if t is not None], g)


# -- the epilogue: conv bias / folded BatchNorm + residual + activation --------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_affine_act_forward_and_backward_match_the_reference(act, dtype):
    torch.manual_seed(0)
    x = torch.randn(3, 7, 5, 9).to(dtype).requires_grad_()
    scale = torch.randn(7, requires_grad=True)  # float32, as folded BatchNorm statistics are
    shift = torch.randn(7, requires_grad=True)
    res = torch.randn(3, 7, 5, 9).to(dtype).requires_grad_()
    y = affine_act(x, scale, shift, res, act, 0.1)
    assert y.dtype == dtype and y.grad_fn.name() == "AffineActBackward"
    want = reference_affine_act(x, scale, shift, res, act, 0.1)
    close(y, want, **tol(dtype))
    g = torch.randn_like(y)
    for got, exp in zip(grads(y, [x, scale, shift, res], g), grads(want, [x, scale, shift, res], g)):
        close(got, exp, **tol(dtype, 1e-4 if got.dim() == 1 else 1e-5))  # [C]: sums over 135 values


@pytest.mark.parametrize("case", ["bias only", "no affine", "negative slope", "2-d", "odd 3x7x257"])
def test_affine_act_variants(case):
    torch.manual_seed(1)
    shape = {"2-d": (5, 13), "odd 3x7x257": (3, 7, 257)}.get(case, (2, 3, 4, 5))
    x = torch.randn(*shape, requires_grad=True)
    c = shape[1]
    scale = shift = res = None
    act, slope = "relu", 0.01
    if case == "bias only":
        shift = torch.randn(c, requires_grad=True)
    elif case == "no affine":
        res = torch.randn(*shape, requires_grad=True)
    elif case == "negative slope":  # the output no longer tells the sign: backward keeps z
        scale, shift, act, slope = torch.randn(c, requires_grad=True), torch.randn(c, requires_grad=True), "leaky_relu", -0.3
    else:
        scale, shift, act = torch.randn(c, requires_grad=True), torch.randn(c, requires_grad=True), "gelu"
    args = (x, scale, shift, res, act, slope)
    y, want = affine_act(*args), reference_affine_act(*args)
    close(y, want, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(y)
    for got, exp in zip(grads(y, args[:4], g), grads(want, args[:4], g)):
        close(got, exp, rtol=1e-4, atol=1e-4)


def test_affine_act_takes_non_contiguous_inputs():
    torch.manual_seed(2)
    base = torch.randn(4, 9, 6, 3)
    x = base.permute(0, 3, 1, 2).requires_grad_()  # [4, 3, 9, 6], channels-last in memory
    res = torch.randn(4, 6, 9, 3).transpose(1, 3)
    shift = torch.randn(6)[::2]  # stride 2
    assert not x.is_contiguous() and not res.is_contiguous() and not shift.is_contiguous()
    y = affine_act(x, None, shift, res, "tanh")
    close(y, reference_affine_act(x, None, shift, res, "tanh"), rtol=1e-5, atol=1e-5)
    y.sum().backward()
    close(x.grad, 1 - y.detach() ** 2, rtol=1e-5, atol=1e-5)


# -- Linear + bias + activation --------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_linear_act_forward_and_backward_match_the_reference(act, dtype):
    torch.manual_seed(3)
    x = torch.randn(3, 7, 257).to(dtype).requires_grad_()  # 3-d input: [..., in]
    w = (torch.randn(33, 257) / 16).to(dtype).requires_grad_()
    b = torch.randn(33).to(dtype).requires_grad_()
    y = linear_act(x, w, b, act, 0.2)
    assert y.shape == (3, 7, 33) and y.dtype == dtype and y.grad_fn.name() == "LinearActBackward"
    want = reference_linear_act(x, w, b, act, 0.2)
    close(y, want, **tol(dtype, 1e-4))
    g = torch.randn_like(y)
    for got, exp in zip(grads(y, [x, w, b], g), grads(want, [x, w, b], g)):
        close(got, exp, **tol(dtype, 1e-4))


@pytest.mark.parametrize("bias", [True, False])
def test_linear_act_odd_shapes_and_non_contiguous_input(bias):
    torch.manual_seed(4)
    x = torch.randn(1023, 1).t().requires_grad_()  # [1, 1023], not contiguous
    w = torch.randn(1023, 5).t().requires_grad_()  # [5, 1023], not contiguous
    b = torch.randn(5, requires_grad=True) if bias else None
    y, want = linear_act(x, w, b, "sigmoid"), reference_linear_act(x, w, b, "sigmoid")
    close(y, want, rtol=1e-4, atol=1e-4)
    g = torch.randn_like(y)
    for got, exp in zip(grads(y, [x, w, b], g), grads(want, [x, w, b], g)):
        close(got, exp, rtol=1e-4, atol=1e-4)


# -- softmax + cross-entropy -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,c", [(1, 1023), (7, 257), (16, 3), (2, 70001)])
def test_cross_entropy_matches_the_reference(n, c, dtype):
    torch.manual_seed(5)
    logits = (torch.randn(n, c) * 3).to(dtype).requires_grad_()
    target = torch.randint(0, c, (n,))
    loss = cross_entropy(logits, target)
    assert loss.dim() == 0 and loss.dtype == dtype and loss.grad_fn.name() == "CrossEntropyBackward"
    want = reference_cross_entropy(logits, target)
    close(loss, want, **tol(dtype))
    (got,), (exp,) = torch.autograd.grad(loss * 2.5, logits), torch.autograd.grad(want * 2.5, logits)
    close(got, exp, **tol(dtype))
    assert torch.equal(logits, logits.detach().clone())  # the logits are left as they were


def test_cross_entropy_without_grad_and_non_contiguous_logits():
    torch.manual_seed(6)
    logits = torch.randn(11, 6).t()  # [6, 11] view
    target = torch.tensor([0, 10, 3, 3, 7, 1])
    with torch.no_grad():
        close(cross_entropy(logits, target), reference_cross_entropy(logits, target), rtol=1e-5, atol=1e-5)
    probs_target = torch.softmax(torch.randn(6, 11), 1)  # class probabilities: the reference takes them
    close(cross_entropy(logits, probs_target), reference_cross_entropy(logits, probs_target))


def test_cross_entropy_for_each_mode(monkeypatch):
    logits, target = torch.randn(4, 5, requires_grad=True), torch.tensor([1, 0, 4, 2])
    assert cross_entropy_for("off") is torch.nn.functional.cross_entropy
    monkeypatch.delenv("NETCANVAS_KERNELS_CPU", raising=False)
    assert cross_entropy_for("on")(logits, target).grad_fn.name() != "CrossEntropyBackward"  # CPU
    assert cross_entropy_for("on", allow_cpu=True)(logits, target).grad_fn.name() == "CrossEntropyBackward"
    assert cross_entropy_for("auto", allow_cpu=True)(logits, target).grad_fn.name() != "CrossEntropyBackward"
    with pytest.raises(ValueError, match="kernels must be one of"):
        cross_entropy_for("fast")


# -- the fusion pass -------------------------------------------------------------------------

def conv_graph() -> Graph:
    """conv-bn-relu, then a residual block (conv-bn-add-relu), conv-relu, and a head."""
    g = chain(("input", "Input", {"shape": [2, 8, 8]}),
              ("c1", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
              ("bn1", "BatchNorm2d"), ("r1", "ReLU"),
              ("c2", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1, "bias": False}),
              ("bn2", "BatchNorm2d"), ("add", "Add"), ("r2", "ReLU"),
              ("c3", "Conv2d", {"out_channels": 3, "kernel_size": 2, "padding": "same"}),  # even: padded by hand
              ("g3", "GELU"), ("flat", "Flatten"),
              ("fc1", "Linear", {"out_features": 9}), ("t1", "Tanh"),
              ("fc2", "Linear", {"out_features": 3}))
    g.add_edge(Edge("r1", "add", 1))
    return g


def add_graph() -> Graph:
    """Two Linear branches summed, then LeakyReLU: Add -> activation alone."""
    g = Graph()
    for node in [Node("input", "Input", {"shape": [5]}), Node("a", "Linear", {"out_features": 6}),
                 Node("b", "Linear", {"out_features": 6}), Node("add", "Add"),
                 Node("act", "LeakyReLU", {"negative_slope": 0.2}), Node("out", "Linear", {"out_features": 2})]:
        g.add_node(node)
    for s, t, port in [("input", "a", 0), ("input", "b", 0), ("a", "add", 0), ("b", "add", 1),
                       ("add", "act", 0), ("act", "out", 0)]:
        g.add_edge(Edge(s, t, port))
    return g


def forward_backward(model, x, state):
    model.load_state_dict(state)
    torch.manual_seed(7)
    out = model(x)
    out.pow(2).mean().backward()
    gs = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    return out.detach(), gs, copy.deepcopy(model.state_dict())


@pytest.mark.parametrize("graph,x_shape,expected", [
    (conv_graph, (3, 2, 8, 8), {"c1": (FusedConv2dAct, ["bn1", "r1"]), "c2": (FusedConv2dAct, ["bn2", "add", "r2"]),
                                "c3": (FusedConv2dAct, ["g3"]), "fc1": (FusedLinearAct, ["t1"])}),
    (add_graph, (4, 5), {"add": (FusedAddAct, ["act"])}),
])
def test_fused_graph_has_the_fused_modules_and_the_same_outputs(graph, x_shape, expected):
    g = graph()
    a = analyze(g)
    torch.manual_seed(0)
    plain = compile_graph(g, a)
    fused = compile_graph(g, a, modules=plain, kernels="on", allow_cpu=True)
    assert {ids[0]: ids[1:] for ids in fused.fused} == {k: v for k, (_, v) in expected.items()}
    for head, (cls, absorbed) in expected.items():
        assert type(getattr(fused, head)) is cls
        for node_id in absorbed:
            assert isinstance(getattr(fused, node_id), FusedInto) and getattr(fused, node_id).into == head
    assert list(fused.state_dict()) == list(plain.state_dict())  # weights files fit both
    assert any("fused" in note for note in fused.kernel_notes)
    x = torch.randn(*x_shape)
    state = copy.deepcopy(plain.state_dict())
    for training in (True, False):
        plain.train(training)
        fused.train(training)
        want, want_grads, want_state = forward_backward(plain, x, state)
        got, got_grads, got_state = forward_backward(fused, x, state)
        close(got, want, rtol=1e-4, atol=1e-5)
        for u, v in zip(got_grads, want_grads):
            close(u, v, rtol=1e-4, atol=1e-5)
        for k in want_state:  # BatchNorm's running statistics move alike
            close(got_state[k], want_state[k], rtol=1e-5, atol=1e-6)


def test_fused_model_keeps_node_ids_for_weights_and_snapshots(tmp_path):
    g = conv_graph()
    a = analyze(g)
    torch.manual_seed(0)
    fused = compile_graph(g, a, kernels="on", allow_cpu=True)
    save_weights(fused, tmp_path / "w.safetensors")
    plain = compile_graph(g, a)
    load_weights(plain, tmp_path / "w.safetensors")
    x = torch.randn(2, 2, 8, 8)
    plain.eval()
    fused.eval()
    close(fused(x), plain(x), rtol=1e-4, atol=1e-5)
    acts = snapshots.activations(fused, a, x)
    assert set(acts) == set(a.order)  # every node still reports (a chain's nodes its output)
    np.testing.assert_allclose(acts["r2"], snapshots.activations(plain, a, x)["r2"], rtol=1e-4, atol=1e-5)
    assert set(snapshots.conv_filters(fused, g)) == {"c1", "c2", "c3"}


def test_links_with_other_users_and_unsupported_modules_are_not_fused():
    g = chain(("input", "Input", {"shape": [4]}), ("fc1", "Linear", {"out_features": 3}),
              ("gelu", "GELU"), ("fc2", "Linear", {"out_features": 3}), ("elu", "ELU"),
              ("fc3", "Linear", {"out_features": 3}), ("relu", "ReLU"), ("add", "Add"))
    g.add_edge(Edge("fc3", "add", 1))  # fc3 feeds relu and add: fusing would lose its output
    fused = compile_graph(g, kernels="on", allow_cpu=True)
    assert fused.fused == [["fc1", "gelu"]]  # ELU has no kernel
    assert activation_of(nn.GELU()) == ("gelu", 0.0) and activation_of(nn.GELU(approximate="tanh")) is None
    assert activation_of(nn.LeakyReLU(0.3)) == ("leaky_relu", 0.3) and activation_of(nn.ELU()) is None


def test_auto_and_off_do_not_fuse_without_a_measurement(monkeypatch):
    g = load_example("resnet").graph
    a = analyze(g)
    assert not hasattr(compile_graph(g, a), "fused")  # exports compile like this: untouched
    auto = compile_graph(g, a, kernels="auto", allow_cpu=True)  # on the CPU: never
    assert auto.fused == [] and not any(isinstance(m, FusedInto) for m in auto.modules())
    on_cpu = compile_graph(g, a, kernels="on")  # "on" needs a GPU unless told otherwise
    assert on_cpu.fused == [] and "CUDA" in on_cpu.kernel_notes[0]
    # a CUDA device without a measurement: "auto" declines and says why (no tensor moves)
    gm = compile_graph(g, a)
    assert policy.MEASURED == ()
    declined = fuse_graph_module(gm, a, mode="auto", device="cuda")
    assert declined is gm and gm.fused == [] and gm.kernel_notes == [policy.NOT_MEASURED]
    # once the bench fills the table, "auto" fuses the measured patterns only
    rule = policy.Rule("conv_affine_act", "relu", "*", "float32", 1, 10**9, 1.3)
    monkeypatch.setattr(policy, "MEASURED", (rule,))
    monkeypatch.setattr("app.engine.kernels.fuse.MEASURED", (rule,))
    monkeypatch.setattr(policy, "_device_name", lambda device: "Test GPU")
    picked = fuse_graph_module(compile_graph(g, a), a, mode="auto", device="cuda")
    assert [ids[0] for ids in picked.fused] == ["stem", "b1_conv1", "b1_conv2", "b2_conv1", "b2_conv2"]
    assert policy.decide("linear_act", "cuda", (10,))[0] is False
    with pytest.raises(ValueError, match="kernels must be one of"):
        compile_graph(g, a, kernels="fast")


# -- the same training, fused or not ---------------------------------------------------------

def sgd_losses(graph: Graph, x, y, kernels: str, steps: int) -> list[float]:
    torch.manual_seed(0)
    plain = compile_graph(graph)
    model = compile_graph(graph, modules=plain, kernels=kernels, allow_cpu=True) if kernels != "off" else plain
    loss_fn = cross_entropy_for(kernels, allow_cpu=True)
    opt = torch.optim.SGD(plain.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for i in range(steps):
        batch = slice((i * 8) % len(x), (i * 8) % len(x) + 8)
        loss = loss_fn(model(x[batch]), y[batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("graph,x_shape,steps", [
    (lambda: chain(("input", "Input", {"shape": [12]}), ("fc1", "Linear", {"out_features": 16}), ("r1", "ReLU"),
                   ("fc2", "Linear", {"out_features": 10}), ("s2", "Sigmoid"),
                   ("fc3", "Linear", {"out_features": 5})), (32, 12), 30),
    (conv_graph, (32, 2, 8, 8), 16),  # ~10 kernel launches a step, each ~10 ms in the interpreter
], ids=["mlp", "conv"])
def test_sgd_steps_give_the_same_losses_fused_or_not(graph, x_shape, steps):
    torch.manual_seed(1)
    x = torch.randn(*x_shape)
    y = (x.flatten(1)[:, :3].argmax(1) + (x.flatten(1)[:, 3] > 0).long()) % 3  # learnable labels
    plain = sgd_losses(graph(), x, y, "off", steps)
    fused = sgd_losses(graph(), x, y, "on", steps)
    assert plain[-1] < plain[0]  # it learns at all
    np.testing.assert_allclose(fused, plain, rtol=1e-4, atol=1e-5)


def test_trainer_trains_the_fused_model_alike(monkeypatch):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 96)
    x = (rng.normal(0, 3, (3, 4))[labels] + rng.normal(0, 0.5, (96, 4))).astype(np.float32)
    data = prepare(RawData(x, labels, ["a", "b", "c"], "blobs"), "blobs", {})

    def train(kernels):
        g = chain(("input", "Input", {"shape": [4]}), ("fc1", "Linear", {"out_features": 8}), ("relu", "ReLU"),
                  ("fc2", "Linear", {"out_features": 3}), ("softmax", "Softmax"))
        project = Project(g, "blobs")
        project.training.update({"epochs": 2, "lr": 0.1, "batch_size": 16, "device": "cpu", "kernels": kernels})
        trainer = Trainer(prepare_run(project, dataset=data))
        losses = []
        trainer.callback = lambda e: losses.append(e.loss) if hasattr(e, "loss") else None
        return trainer, trainer.run(), losses

    monkeypatch.setenv("NETCANVAS_KERNELS_CPU", "1")
    fused_trainer, fused, fused_losses = train("on")
    assert fused_trainer.train_model.fused == [["fc1", "relu"]]
    assert not hasattr(fused_trainer.model, "fused")  # snapshots and weights read the unfused model
    assert any("fused fc1+relu" in n for n in fused_trainer.run_spec.notes)
    _, plain, plain_losses = train("off")
    np.testing.assert_allclose(fused_losses, plain_losses, rtol=1e-4, atol=1e-5)
    assert fused.test_accuracy == plain.test_accuracy


# -- on a real GPU -----------------------------------------------------------------------------

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_on_the_gpu(dtype):
    torch.manual_seed(0)
    dev = "cuda"
    x = torch.randn(256, 1000, device=dev, dtype=dtype, requires_grad=True)
    w = (torch.randn(500, 1000, device=dev) / 32).to(dtype).requires_grad_()
    b = torch.randn(500, device=dev, dtype=dtype, requires_grad=True)
    for act in ACTS:
        y, want = linear_act(x, w, b, act), reference_linear_act(x, w, b, act)
        close(y, want, **tol(dtype, 1e-3))  # TF32 may be on for float32 matmuls
        g = torch.randn_like(y)
        for got, exp in zip(grads(y, [x, w, b], g), grads(want, [x, w, b], g)):
            close(got, exp, **tol(dtype, 1e-3))
    t = torch.randn(64, 16, 14, 14, device=dev, dtype=dtype, requires_grad=True)
    s, h = torch.randn(16, device=dev), torch.randn(16, device=dev)
    close(affine_act(t, s, h, t, "relu"), reference_affine_act(t, s, h, t, "relu"), **tol(dtype))
    logits, target = torch.randn(4096, 10, device=dev, dtype=dtype), torch.randint(0, 10, (4096,), device=dev)
    close(cross_entropy(logits, target), reference_cross_entropy(logits, target), **tol(dtype))


@pytest.mark.gpu
@cuda
def test_resnet_fused_on_the_gpu_matches_and_the_bench_runs(tmp_path):
    g = load_example("resnet").graph
    a = analyze(g)
    torch.manual_seed(0)
    plain = compile_graph(g, a, device="cuda")
    fused = compile_graph(g, a, modules=plain, kernels="on")
    assert len(fused.fused) == 5
    x = torch.randn(32, 1, 28, 28, device="cuda")
    state = copy.deepcopy(plain.state_dict())
    want, want_grads, _ = forward_backward(plain, x, state)
    got, got_grads, _ = forward_backward(fused, x, state)
    close(got, want, rtol=1e-3, atol=1e-3)
    for u, v in zip(got_grads, want_grads):
        close(u, v, rtol=1e-3, atol=1e-3)
    from bench.kernels import main

    assert main(["--quick", "--no-compile", "--csv", str(tmp_path / "kernels.csv")]) == 0
    assert (tmp_path / "kernels.csv").read_text().count("\n") > 10
