"""Fused Triton kernels against eager PyTorch and torch.compile, measured in one run on a
CUDA GPU (python bench/kernels.py; ``--quick`` for fewer shapes, ``--no-compile`` to skip
torch.compile, ``--dtype bfloat16`` ...).

Per case: median times (``triton.testing.do_bench``) of the forward, the backward alone and
the full step (forward + backward; for whole models also an SGD step) for

- ``eager``: the unfused torch modules (cuBLAS / cuDNN and separate elementwise ops),
- ``compile``: ``torch.compile`` of the same function (Inductor's own fusion),
- ``ours``: the fused Triton modules of app/engine/kernels.

Shapes come from the examples, scaled up: the deep MLP 784-1000-500-100-10 at batch 4096,
LeNet-5 and ResNet convolutions at batch 256, the losses at 10 to 32k classes. The ratio
columns read ``eager / ours`` and ``compile / ours``: above 1 means ours is faster. Results
go to the screen and to bench/results/kernels.csv; the ``auto`` column marks the cases
where ours beat both others by ``policy.MIN_SPEEDUP`` in the full step: those are the
``policy.MEASURED`` rules printed at the end, to paste into app/engine/kernels/policy.py.

Without a GPU it says so and exits 0 (``--smoke`` runs tiny shapes on the CPU under
Triton's interpreter, to check this script itself; its times mean nothing).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "kernels.csv"


@dataclass
class Case:
    name: str  # e.g. "mlp fc1 784-1000"
    op: str  # the policy op: linear_act, conv_affine_act, add_act, cross_entropy, model
    act: str
    shape: str  # for people: "4096x784 -> 1000"
    features: int  # values per sample, as policy.decide counts them
    make: Callable  # (device, dtype) -> (inputs needing grads, eager fn, ours fn, params for an SGD step)


def linear_case(name, batch, n_in, n_out, act):
    def make(device, dtype):
        import torch
        from torch import nn

        from app.engine.kernels.fused import FusedLinearAct

        linear = nn.Linear(n_in, n_out).to(device, dtype)
        act_module = _act_module(act)
        fused = FusedLinearAct(linear, act, 0.01)
        x = torch.randn(batch, n_in, device=device, dtype=dtype, requires_grad=True)
        return [x, linear.weight, linear.bias], lambda: act_module(linear(x)), lambda: fused(x), None

    return Case(name, "linear_act", act, f"{batch}x{n_in} -> {n_out}", n_out, make)


def conv_case(name, batch, c_in, c_out, size, k, padding, bn, residual, act, training=True):
    def make(device, dtype):
        import torch
        from torch import nn

        from app.engine.kernels.fused import FusedConv2dAct, FusedInto

        conv = nn.Conv2d(c_in, c_out, k, padding=padding, bias=not bn).to(device, dtype)
        norm = nn.BatchNorm2d(c_out).to(device, dtype) if bn else None
        act_module = _act_module(act)
        fused = FusedConv2dAct(conv, FusedInto(norm, "conv") if norm is not None else None, act, 0.01, residual)
        for m in (conv, norm, fused):
            if m is not None:
                m.train(training)
        x = torch.randn(batch, c_in, size, size, device=device, dtype=dtype, requires_grad=True)
        out = size + 2 * padding - k + 1
        skip = torch.randn(batch, c_out, out, out, device=device, dtype=dtype) if residual else None

        def eager():
            y = conv(x)
            if norm is not None:
                y = norm(y)
            if skip is not None:
                y = y + skip
            return act_module(y)

        inputs = [x, conv.weight] + ([norm.weight, norm.bias] if norm is not None else [conv.bias])
        return inputs, eager, lambda: fused(x, skip), None

    out = size + 2 * padding - k + 1
    what = "+bn" * bn + "+add" * residual + ("" if training else " eval")
    return Case(f"{name}{what}", "conv_affine_act", act, f"{batch}x{c_in}x{size}x{size} -> {c_out}x{out}x{out}",
                c_out * out * out, make)


def add_case(name, batch, shape, act):
    def make(device, dtype):
        import torch

        from app.engine.kernels.fused import FusedAddAct

        a = torch.randn(batch, *shape, device=device, dtype=dtype, requires_grad=True)
        b = torch.randn(batch, *shape, device=device, dtype=dtype, requires_grad=True)
        act_module, fused = _act_module(act), FusedAddAct(act, 0.01)
        return [a, b], lambda: act_module(a + b), lambda: fused(a, b), None

    return Case(name, "add_act", act, f"2x {batch}x" + "x".join(map(str, shape)), math.prod(shape), make)


def loss_case(name, batch, classes):
    def make(device, dtype):
        import torch
        from torch.nn import functional as F

        from app.engine.kernels.loss import cross_entropy

        logits = torch.randn(batch, classes, device=device, dtype=dtype, requires_grad=True)
        target = torch.randint(0, classes, (batch,), device=device)
        return [logits], lambda: F.cross_entropy(logits, target), lambda: cross_entropy(logits, target), None

    return Case(name, "cross_entropy", "*", f"{batch}x{classes}", classes, make)


def model_case(name, example, batch, loss_node):
    def make(device, dtype):
        import torch
        from torch.nn import functional as F

        from app.engine.compiler import compile_graph
        from app.engine.examples import load_example
        from app.engine.kernels.loss import cross_entropy

        graph = load_example(example).graph
        plain = compile_graph(graph, output=loss_node, device=device).to(dtype)
        fused = compile_graph(graph, output=loss_node, modules=plain, kernels="on", allow_cpu=True)
        x = torch.randn(batch, *plain.input_shapes[0], device=device, dtype=dtype)
        y = torch.randint(0, 10, (batch,), device=device)
        params = list(plain.parameters())
        return params, lambda: F.cross_entropy(plain(x), y), lambda: cross_entropy(fused(x), y), params

    return Case(f"{name} model", "model", "*", f"batch {batch}", 0, make)


def _act_module(act):
    from torch import nn

    return {"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.01), "gelu": nn.GELU(), "sigmoid": nn.Sigmoid(),
            "tanh": nn.Tanh(), "identity": nn.Identity()}[act]


def cases(quick: bool, smoke: bool) -> list[Case]:
    if smoke:  # tiny, for the CPU interpreter
        return [linear_case("mlp fc", 8, 12, 10, "relu"), conv_case("conv", 2, 2, 3, 6, 3, 1, True, True, "relu"),
                add_case("add", 2, (3, 4, 4), "relu"), loss_case("loss", 8, 10), model_case("mlp", "mlp", 4, "fc3")]
    found = [
        linear_case("mlp fc1 784-1000", 4096, 784, 1000, "relu"),
        linear_case("mlp fc2 1000-500", 4096, 1000, 500, "relu"),
        linear_case("mlp fc3 500-100", 4096, 500, 100, "relu"),
    ]
    if not quick:
        found += [linear_case(f"mlp fc2 {act}", 4096, 1000, 500, act) for act in ("gelu", "sigmoid", "tanh", "leaky_relu")]
    found += [
        conv_case("lenet conv1", 256, 1, 6, 28, 5, 0, False, False, "relu"),
        conv_case("lenet conv2", 256, 6, 16, 12, 5, 0, False, False, "relu"),
        conv_case("resnet conv", 256, 16, 16, 28, 3, 1, True, False, "relu"),
        conv_case("resnet conv", 256, 16, 16, 28, 3, 1, True, True, "relu"),
    ]
    if not quick:
        found += [conv_case("resnet conv", 256, 16, 16, 28, 3, 1, True, False, "relu", training=False),
                  conv_case("resnet conv", 256, 64, 64, 56, 3, 1, True, True, "relu"),
                  add_case("resnet add", 256, (16, 28, 28), "relu")]
    found += [loss_case("loss 10 classes", 4096, 10), loss_case("loss 1000 classes", 4096, 1000)]
    if not quick:
        found += [loss_case("loss 32k classes", 256, 32768)]
    found += [model_case("deep mlp", "deep_mlp", 4096, "fc4"), model_case("lenet5", "lenet5", 256, "fc3"),
              model_case("resnet", "resnet", 256, "fc")]
    return found


def make_timer(smoke: bool):
    if not smoke:
        from triton.testing import do_bench

        return lambda fn, grad_to_none=None: do_bench(fn, warmup=25, rep=100, grad_to_none=grad_to_none,
                                                      return_mode="median")

    def timer(fn, grad_to_none=None):
        times = []
        for _ in range(3):
            for t in grad_to_none or []:
                t.grad = None
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)

    return timer


def measure(fn, inputs, params, timer) -> dict[str, float]:
    """Median ms of the forward, the backward alone, and the whole step."""
    import torch

    out = fn()
    g = torch.ones_like(out) if out.dim() == 0 else torch.randn_like(out)
    result = {"fwd": timer(fn)}
    out = fn()
    result["bwd"] = timer(lambda: out.backward(g, retain_graph=True), grad_to_none=inputs)
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9) if params else None

    def step():
        fn().backward(g)
        if opt is not None:
            opt.step()

    result["step"] = timer(step, grad_to_none=inputs)
    return result


def run_case(case: Case, device, dtype, timer, use_compile: bool) -> dict[str, dict[str, float]]:
    import torch

    inputs, eager, ours, params = case.make(device, dtype)
    times = {"eager": measure(eager, inputs, params, timer), "ours": measure(ours, inputs, params, timer)}
    if use_compile:
        try:
            compiled = torch.compile(eager)
            compiled()  # compile outside the timing
            times["compile"] = measure(compiled, inputs, params, timer)
        except Exception as e:  # noqa: BLE001 - a failed compile is a result, not a crash
            print(f"  torch.compile failed on {case.name}: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer shapes")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    parser.add_argument("--csv", default=str(RESULTS), help=f"where the table goes (default {RESULTS})")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU interpreter (checks the script)")
    args = parser.parse_args(argv)
    if args.smoke:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before any kernel module imports
    import torch

    from app.engine.kernels import triton_available
    from app.engine.kernels.policy import MIN_SPEEDUP

    if not args.smoke and not torch.cuda.is_available():
        print("bench/kernels.py needs a CUDA GPU; this machine has none, so nothing was measured "
              "(the fused kernels are not measured on a GPU yet, and kernels='auto' uses none of them)")
        return 0
    if not triton_available():
        print("bench/kernels.py needs Triton (pip install triton); nothing was measured")
        return 0
    device = "cpu" if args.smoke else "cuda"
    dtype = getattr(torch, args.dtype)
    use_compile = not args.no_compile and not args.smoke
    gpu = "cpu (smoke)" if args.smoke else torch.cuda.get_device_name()
    print(f"torch {torch.__version__}, {gpu}, {args.dtype}; ms are medians; ratios above 1: ours is faster")
    header = (f"{'case':<28}{'shape':<30}{'phase':<6}{'eager ms':>10}{'compile ms':>11}{'ours ms':>9}"
              f"{'eager/ours':>11}{'comp/ours':>10}  auto")
    print(header)
    rows, rules = [], []
    torch.manual_seed(0)
    timer = make_timer(args.smoke)
    for case in cases(args.quick, args.smoke):
        times = run_case(case, device, dtype, timer, use_compile)
        for phase in ("fwd", "bwd", "step"):
            eager, ours = times["eager"][phase], times["ours"][phase]
            comp = times["compile"][phase] if "compile" in times else float("nan")
            best = min(eager, comp) if not math.isnan(comp) else eager
            wins = phase == "step" and case.op != "model" and best / ours >= MIN_SPEEDUP and "compile" in times
            rows.append({"case": case.name, "op": case.op, "act": case.act, "shape": case.shape,
                         "features": case.features, "dtype": args.dtype, "device": gpu, "phase": phase,
                         "eager_ms": round(eager, 5), "compile_ms": round(comp, 5), "ours_ms": round(ours, 5),
                         "eager_over_ours": round(eager / ours, 4), "compile_over_ours": round(comp / ours, 4),
                         "auto": "yes" if wins else ""})
            print(f"{case.name:<28}{case.shape:<30}{phase:<6}{eager:>10.4f}{comp:>11.4f}{ours:>9.4f}"
                  f"{eager / ours:>11.3f}{comp / ours:>10.3f}  {'yes' if wins else ''}")
            if wins:
                rules.append(f'Rule("{case.op}", "{case.act}", "{gpu}", "{args.dtype}", {case.features}, '
                             f"{case.features}, {best / ours:.2f}),  # {case.name}, {case.shape}")
        sys.stdout.flush()
    out = Path(args.csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {out}")
    if args.smoke:
        print("(smoke run on the CPU interpreter: these times say nothing about a GPU)")
    elif rules:
        print("policy.MEASURED rules for the cases where ours won the full step:")
        print("\n".join("    " + r for r in rules))
    else:
        print("ours won no full step here by the policy's margin: policy.MEASURED stays as it is")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
