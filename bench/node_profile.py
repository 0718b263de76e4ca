"""How well ``netcanvas profile``'s per-node times add up to the whole model's forward +
backward (issue 19: within 15 %), on the CPU unless --device says, measured in one run per model:

    python bench/node_profile.py [--repeats 15] [--rounds 3] [--device cpu] [--kernels off]

Prints, per model and round, the nodes' sum, the whole model's forward + backward (both
medians over the repeats, after warm-up) and their ratio; then the median ratio per model.
``--kernels`` (default: each project's setting) compiles the model as the trainer would
with that setting: on a CUDA GPU, "on" fuses chains, each then one row.
"""

from __future__ import annotations

import argparse
import statistics

from app.engine.cli_io import open_project
from app.engine.profiler import profile

MODELS = (("lenet5", 32), ("lenet5", 64), ("resnet", 4), ("resnet", 64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--kernels", choices=("auto", "on", "off"))
    args = parser.parse_args()
    for name, batch in MODELS:
        project, _ = open_project(name)
        ratios = []
        for r in range(args.rounds):
            result = profile(project, batch, args.device, repeats=args.repeats, kernels=args.kernels)
            whole = result.forward_ms + result.backward_ms
            ratios.append(result.node_ms() / whole)
            fused = sum(len(n.group) > 1 for n in result.nodes)
            print(f"{name:7} batch {batch:3}  round {r + 1}: nodes {result.node_ms():8.3f} ms  "
                  f"whole {whole:8.3f} ms  ratio {ratios[-1]:.3f}  ({len(result.nodes)} rows, {fused} fused)",
                  flush=True)
        print(f"{name:7} batch {batch:3}  median ratio {statistics.median(ratios):.3f} "
              f"(goal: within 0.85-1.15)", flush=True)


if __name__ == "__main__":
    main()
