"""Transfer learning against training from scratch, in one command
(python bench/transfer.py [--out FOLDER] [--seeds N]).

The three bundled examples, offline (scikit-learn's digits at 28x28):

1. ``transfer_base``: LeNet-5 trained on the digits 0-4 (all their training samples);
   its weights go to ``transfer_base.safetensors`` in the working folder.
2. ``transfer``: the same network starting from those weights (``training.init_weights``),
   its head replaced by a new 5-way Linear for the digits 5-9 (initialized, since the file
   has no weights of that name), the convolutions and fc1/fc2 frozen, trained on 20 samples
   per class (``dataset.samples_per_class``).
3. ``transfer_scratch``: the same network from a fresh initialization, nothing frozen, on
   the same 20 samples per class.

Both 2 and 3 are tested on the same held-out digits 5-9 (the split depends only on the
data split seed). With ``--seeds N`` steps 2 and 3 run with N initialization seeds and the
mean and range are printed. ``--frozen conv1,conv2`` freezes only those nodes of step 2
(the example freezes every layer but the head). Prints one line per run and a last JSON
line with the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.engine.examples import example_path  # noqa: E402  (after the path is set)
from app.engine.project import load_project  # noqa: E402
from app.engine.training.trainer import Trainer, prepare_run  # noqa: E402

STEPS = ("transfer_base", "transfer", "transfer_scratch")


def train(folder: Path, name: str, seed: int = 0) -> dict:
    """Train the example ``name`` copied into ``folder`` (weights beside it). Returns the
    figures: test accuracy, notes, epochs, seconds."""
    project = load_project(folder / f"{name}.netcanvas.json")
    run = prepare_run(project, device="cpu", seed=seed)
    trainer = Trainer(run, weights_path=folder / f"{name}-seed{seed}.safetensors" if name != "transfer_base"
                      else folder / f"{name}.safetensors")
    event = trainer.run()
    return {"name": name, "seed": seed, "test_accuracy": event.test_accuracy, "epochs": event.epochs_run,
            "train_samples": len(run.dataset.train), "test_samples": len(run.dataset.test),
            "seconds": round(event.seconds, 2), "notes": list(run.notes)}


def freeze(path: Path, node_ids: list[str]) -> None:
    """Rewrite the project at ``path`` so that exactly ``node_ids`` are frozen."""
    data = json.loads(path.read_text(encoding="utf-8"))
    for node in data["graph"]["nodes"]:
        node.pop("trainable", None)
        if node["id"] in node_ids:
            node["trainable"] = False
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="working folder (default: a temporary one, removed afterwards)")
    parser.add_argument("--seeds", type=int, default=1, help="initialization seeds for steps 2 and 3")
    parser.add_argument("--frozen", help="comma-separated nodes to freeze in step 2 instead of the example's")
    args = parser.parse_args(argv)
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="netcanvas-transfer-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for name in STEPS:
            shutil.copy(example_path(name), folder / f"{name}.netcanvas.json")
        if args.frozen:
            freeze(folder / "transfer.netcanvas.json", args.frozen.split(","))
        base = train(folder, "transfer_base")
        print(f"transfer_base: digits 0-4, {base['train_samples']} training samples: "
              f"test accuracy {base['test_accuracy']:.2%} ({base['seconds']} s)")
        figures = {"base": base["test_accuracy"], "transfer": [], "scratch": []}
        for seed in range(args.seeds):
            for name, key in (("transfer", "transfer"), ("transfer_scratch", "scratch")):
                r = train(folder, name, seed)
                figures[key].append(r["test_accuracy"])
                weights_note = next((n for n in r["notes"] if n.startswith("weights:")), "fresh initialization")
                print(f"{name} (seed {seed}): digits 5-9, {r['train_samples']} training samples, "
                      f"{r['test_samples']} test: test accuracy {r['test_accuracy']:.2%} ({r['seconds']} s); "
                      f"{weights_note}")
        for key in ("transfer", "scratch"):
            values = figures[key]
            print(f"{key}: mean test accuracy {statistics.mean(values):.2%} over {len(values)} seed(s), "
                  f"range {min(values):.2%} to {max(values):.2%}")
        print(json.dumps(figures))
    finally:
        if not args.out:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
