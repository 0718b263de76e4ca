"""The ``profile`` command: where a project's model spends its time, memory and FLOPs.

    netcanvas profile FILE [--batch-size B] [--device D] [--repeats N] [--kernels K] [--json]

A table in the graph's order (forward and backward milliseconds, share of the time, output
memory, parameters, FLOPs), the totals, the whole model measured apart (forward, backward,
loss, optimizer step) and the five nodes taking the most time. The model is compiled with
the project's kernels setting (or ``--kernels``), as the trainer compiles it: a fused chain
is one row, named by its node ids joined by "+" (in --json: one row whose "group" lists them). Exit codes as ``check``:
0; 1 a graph with errors, a device this machine lacks or a bad setting; 2 a project that
cannot be read.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, TextIO

from .cli_io import open_or_report
from .errors import DeviceError, GraphError, NetCanvasError

if TYPE_CHECKING:
    from .profiler import Profile

COMMANDS: tuple[str, ...] = ("profile",)


def add_parsers(sub) -> None:
    """Add the ``profile`` sub-command to ``sub`` (argparse sub-parsers)."""
    p = sub.add_parser("profile", help="time, memory, parameters and FLOPs of every node of a project's model")
    p.add_argument("file", help="a project file, or the name of a bundled example")
    p.add_argument("--batch-size", type=int, metavar="B", help="the batch (default: the project's batch_size)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--repeats", type=int, default=10, metavar="N",
                   help="timed runs per measurement after warm-up; the figures are their medians (default 10)")
    p.add_argument("--kernels", choices=("auto", "on", "off"),
                   help="fused kernels, as training.kernels (default: the project's setting)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args, out: TextIO, err: TextIO) -> int:
    """Run the ``profile`` command parsed into ``args``; returns the exit code."""
    # imported here: every command's parser is built at start, and `check` must not load torch
    from .devices import resolve_device
    from .profiler import profile

    opened = open_or_report(args.file, err)
    if opened is None:
        return 2
    project, _ = opened
    batch = args.batch_size if args.batch_size is not None else int(project.training.get("batch_size", 1))
    if batch < 1 or args.repeats < 1:
        which = "--batch-size" if batch < 1 else "--repeats"
        err.write(f"error: {which} must be at least 1; received {batch if batch < 1 else args.repeats}\n")
        return 1
    try:
        device = resolve_device(args.device)
    except DeviceError as e:
        err.write(f"error: --device: {e.message}\n")
        return 1
    try:
        result = profile(project, batch, device, repeats=args.repeats, kernels=args.kernels)
    except GraphError as e:
        err.write(f"error: {args.file} has errors, so it cannot be profiled:\n")
        err.writelines(f"  {issue}\n" for issue in e.issues)
        return 1
    except NetCanvasError as e:
        err.write(f"error: {e}\n")
        return 1
    except RuntimeError as e:  # out of memory on the device, above all
        err.write(f"error: profiling {args.file} on {device} failed: {str(e).splitlines()[0]}\n")
        return 1
    if args.json:
        json.dump(result.to_json(), out)
        out.write("\n")
    else:
        out.write(table(result))
    return 0


def table(p: Profile) -> str:
    """The text report: one row per node in the graph's order, totals, the whole model,
    the top 5 nodes by time."""
    node_total = p.node_ms() or 1.0
    names = {id(n): "+".join(n.group or [n.id]) for n in p.nodes}  # a fused chain: its node ids
    width = max([len(name) for name in names.values()] + [4])
    kind = max([len(n.type) for n in p.nodes] + [4])
    head = (f"{'node':<{width}}  {'type':<{kind}}  {'fwd ms':>9}  {'bwd ms':>9}  {'share':>6}  "
            f"{'output':>10}  {'params':>11}  {'FLOPs':>14}")
    lines = [f"profile: batch {p.batch_size} on {p.device}, kernels {p.kernels!r}, medians of {p.repeats} "
             "runs after warm-up", "",
             head, "-" * len(head)]
    for n in p.nodes:
        share = (n.forward_ms + n.backward_ms) / node_total
        lines.append(f"{names[id(n)]:<{width}}  {n.type:<{kind}}  {n.forward_ms:9.3f}  {n.backward_ms:9.3f}  "
                     f"{share:6.1%}  {_bytes(n.output_bytes):>10}  {n.params:>11,}  {n.flops:>14,}")
    lines.append("-" * len(head))
    fwd, bwd = sum(n.forward_ms for n in p.nodes), sum(n.backward_ms for n in p.nodes)
    lines.append(f"{'total':<{width}}  {'':<{kind}}  {fwd:9.3f}  {bwd:9.3f}  {1:6.0%}  "
                 f"{_bytes(sum(n.output_bytes for n in p.nodes)):>10}  {sum(n.params for n in p.nodes):>11,}  "
                 f"{p.total_flops:>14,}")
    whole = p.forward_ms + p.backward_ms
    lines += ["", f"whole model: forward {p.forward_ms:.3f} ms, backward {p.backward_ms:.3f} ms "
                  f"(the nodes add up to {(fwd + bwd) / whole:.0%} of that)" if whole else
              f"whole model: forward {p.forward_ms:.3f} ms, backward {p.backward_ms:.3f} ms",
              f"loss ({p.loss}): {p.loss_ms:.3f} ms; optimizer step: {p.optimizer_ms:.3f} ms (not in the table)",
              "FLOPs: forward, as torch.utils.flop_counter.FlopCounterMode counts them", "",
              "top 5 by time:"]
    lines += [f"  {names[id(n)]} ({n.type}): {n.forward_ms + n.backward_ms:.3f} ms, "
              f"{(n.forward_ms + n.backward_ms) / node_total:.1%}" for n in p.top(5)]
    lines += [f"note: {note}" for note in p.notes]
    return "\n".join(lines) + "\n"


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
