"""The train.py, data.npz and README.md that go beside an exported model.py.

train.py is plain PyTorch: the project's training settings as constants, the loss written
out the way NetCanvas computes it (``training/objective.py``: MSE on one-hot targets,
CrossEntropy on the logits before a final Softmax, ...), and one loop that runs as
``python train.py`` or under ``torchrun`` with DistributedDataParallel. data.npz holds the
splits exactly as NetCanvas trains on them (normalized, shaped to the Input).
"""

from __future__ import annotations

import io
from string import Template

import numpy as np

from ..config import MASK_THRESHOLD
from ..datasets import Dataset
from ..files import atomic_write
from ..inference import Analysis
from ..optimizers import script_source
from ..project import Project
from .source_text import doc_text

SETTINGS = ("optimizer", "lr", "momentum", "weight_decay", "batch_size", "epochs", "drop_last",
            "schedule", "step_size", "gamma", "early_stopping_patience", "seed")


def save_data(path, data: Dataset) -> None:
    """The three splits as ``x_*`` (float32) / ``y_*`` (int64) arrays, ``class_names``,
    and the training split's ``mean`` / ``std`` when the data was normalized (to prepare
    new inputs the same way). Plain arrays only: ``np.load(allow_pickle=False)`` reads it."""
    arrays = {}
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        arrays[f"x_{name}"] = split.x.numpy()
        arrays[f"y_{name}"] = split.y.numpy()
    arrays["class_names"] = np.array([str(c) for c in data.class_names], dtype=str)
    if data.mean is not None:
        arrays["mean"], arrays["std"] = data.mean.numpy(), data.std.numpy()
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write(path, buffer.getvalue())


def objective_source(run) -> tuple[str, str | None]:
    """``compute_loss`` and ``count_correct`` as Python source, mirroring
    ``training.objective.make_objective`` for ``run``; and the id of a final
    Softmax/Sigmoid that the loss skips (None when it reads the output itself)."""
    a, settings = run.analysis, run.settings
    loss, target = settings["loss"], settings.get("target", "labels")
    skipped = a.output if run.objective.loss_node != a.output else None
    units = a.shapes[a.output][0] if len(a.shapes[a.output]) == 1 else None
    fn = {"MSELoss": "F.mse_loss", "BCELoss": "F.binary_cross_entropy",
          "BCEWithLogitsLoss": "F.binary_cross_entropy_with_logits"}.get(loss)
    if target == "input":
        return (f'def compute_loss(out, x, y):\n    """{loss} between the output and the input '
                f'itself (a reconstruction)."""\n    return {fn}(out, x)\n\n\n'
                "count_correct = None  # a reconstruction has no accuracy\n"), skipped
    if target == "mask":
        return _MASK.substitute(loss=loss, fn=fn, threshold=MASK_THRESHOLD,
                                cut="0.0" if loss == "BCEWithLogitsLoss" else "0.5"), skipped
    if units == 1:
        threshold = "0.0" if loss == "BCEWithLogitsLoss" else "0.5"
        return (f'def compute_loss(out, x, y):\n    """{loss} of the one output unit against the '
                f'0/1 labels."""\n    return {fn}(out, y.to(out.dtype).reshape(out.shape))\n\n\n'
                f'def count_correct(out, y, x=None):\n    """Predictions (output above {threshold}) that '
                f'match the labels."""\n    return ((out.reshape(-1) > {threshold}).long() == y).sum()\n'), skipped
    body = {
        "CrossEntropyLoss": ("CrossEntropyLoss on the scores" + (" (logits)" if skipped else ""),
                             "F.cross_entropy(out, y)"),
        "NLLLoss": ("NLLLoss on log-probabilities", "F.nll_loss(out, y)"),
        "MSELoss": ("MSELoss against one-hot targets (as in the course material)",
                    f"F.mse_loss(out, F.one_hot(y, {units}).to(out.dtype))"),
        "BCEWithLogitsLoss": ("BCEWithLogitsLoss against one-hot targets",
                              f"F.binary_cross_entropy_with_logits(out, F.one_hot(y, {units}).to(out.dtype))"),
        "BCELoss": ("BCELoss against one-hot targets",
                    f"F.binary_cross_entropy(out, F.one_hot(y, {units}).to(out.dtype))"),
    }[loss]
    return (f'def compute_loss(out, x, y):\n    """{body[0]}."""\n    return {body[1]}\n\n\n'
            'def count_correct(out, y, x=None):\n    """Predictions (the largest score) that match the '
            'labels."""\n    return (out.argmax(1) == y).sum()\n'), skipped


# target "mask" (training/objective.py): the input's pixels above the threshold, on the data's
# own scale; the samples in data.npz are normalized, so the threshold is moved like them
_MASK = Template('''def _mask_threshold():
    """$threshold on the data's own scale, normalized like the samples in data.npz."""
    with np.load(HERE / "data.npz", allow_pickle=False) as data:
        if "mean" not in data:
            return torch.tensor($threshold)
        return ($threshold - torch.from_numpy(data["mean"])) / torch.from_numpy(data["std"])


MASK_AT = _mask_threshold()


def target_mask(x, like):
    """The input's pixels above $threshold (before normalization) as 1, the others as 0."""
    return (x > MASK_AT.to(x.device)).to(like.dtype)


def compute_loss(out, x, y):
    """$loss between the output and the mask of the input's pixels above $threshold."""
    return $fn(out, target_mask(x, out))


def count_correct(out, y, x):
    """Each sample's share of pixels predicted right (output above $cut), summed."""
    right = ((out > $cut) == (target_mask(x, out) > 0.5)).to(out.dtype)
    return right.reshape(len(out), -1).mean(1).sum()
''')


def train_source(project: Project, run, class_name: str) -> str:
    """The text of train.py for ``run`` (``training.prepare_run(project)``)."""
    s = run.settings
    constants = "\n".join(f"{name.upper()} = {_constant(s.get(name))}" for name in SETTINGS)
    objective, skipped = objective_source(run)
    if skipped:
        sink = project.graph.nodes[skipped]
        logits = (f"    # {s['loss']} expects raw scores: train on the input of the final "
                  f"{sink.type} (the logits),\n"
                  f"    # as NetCanvas does. {sink.type} has no weights, so the saved file is "
                  f"the same.\n"
                  f"    final = model.{skipped}\n"
                  f"    model.{skipped} = nn.Identity()\n")
        restore = f"            model.{skipped} = final\n"
    else:
        logits = restore = ""
    return Template(_TRAIN).substitute(
        title=doc_text(project.name), class_name=class_name, constants=constants,
        objective=objective, optimizers=script_source(_SCRIPT_VARIABLES), logits=logits, restore=restore,
        nn_import="from torch import nn\n" if skipped else "")


# where train.py reads each setting: its constants, but the learning rate and the epochs
# from the command line (--lr, --epochs)
_SCRIPT_VARIABLES = {**{name: name.upper() for name in SETTINGS}, "lr": "lr", "epochs": "epochs"}


def _constant(value) -> str:
    """A setting as Python source (the settings are plain, checked values)."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def readme_text(project: Project, a: Analysis, class_name: str, trainable: bool) -> str:
    """README.md for the export folder."""
    shapes = ", ".join(f"`{i}` {list(a.shapes[i])}" for i in a.inputs)
    lines = [
        f"# {' '.join(project.name.split())}: PyTorch export",
        "",
        "Exported from NetCanvas. Needs Python 3.10+ and `pip install torch numpy safetensors`.",
        "",
        (f"- `model.py`: the class `{class_name}` (plain PyTorch; inputs {shapes} plus a batch "
         f"dimension, output `{a.output}` {list(a.shapes[a.output])})."),
        "- `weights.safetensors`: its weights (`model.load_state_dict(load_file(...))`).",
    ]
    if trainable:
        lines += [
            ("- `data.npz`: the data exactly as NetCanvas trains on it: `x_train`, `y_train`, "
             "`x_val`, `y_val`, `x_test`, `y_test`, `class_names` (and `mean` / `std` of the "
             "normalization, when there is one)."),
            "- `train.py`: trains the model on data.npz with the project's settings.",
            "",
            "## Train",
            "",
            "```",
            "python train.py                                   # one process",
            "torchrun --nproc_per_node 2 train.py              # 2 processes, DistributedDataParallel",
            "python train.py --epochs 3 --device cpu           # other settings: python train.py --help",
            "```",
            "",
            ("The weights are saved to `trained.safetensors`. With one process, train.py starts "
             "from the same initialization and takes the same minibatches as NetCanvas."),
        ]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "import torch",
        "from safetensors.torch import load_file",
        f"from model import {class_name}, INPUT_SHAPES",
        "",
        f"model = {class_name}()",
        'model.load_state_dict(load_file("weights.safetensors"))',
        "model.eval()",
        "with torch.no_grad():",
        "    out = model(*(torch.randn(1, *shape) for shape in INPUT_SHAPES.values()))",
        "```",
        "",
    ]
    return "\n".join(lines)


_TRAIN = '''"""Train $class_name (model.py) on data.npz with the settings of the NetCanvas project
"$title".

    python train.py                        # one process
    torchrun --nproc_per_node 2 train.py   # 2 processes with DistributedDataParallel

Under torchrun each process trains on its share of every epoch (a DistributedSampler) and
DistributedDataParallel averages the gradients (gloo on the CPU, nccl on GPUs). BATCH_SIZE
stays the global batch: each of N processes takes BATCH_SIZE / N samples per step, so an
epoch has as many steps as with one process. Process 0 prints the metrics, evaluates on the
test split and saves the weights. With one process the run starts from NetCanvas's
initialization and takes its minibatches in the same order.
"""

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
${nn_import}from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from model import $class_name

HERE = Path(__file__).resolve().parent

# the project's training settings
$constants


$objective

def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--max-steps", type=int, help="stop after this many steps")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="the global batch size")
    parser.add_argument("--lr", type=float, default=LR)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--data", default=str(HERE / "data.npz"))
    parser.add_argument("--weights", help="start from these weights instead of a fresh initialization")
    parser.add_argument("--out", default=str(HERE / "trained.safetensors"), help="where the weights go")
    return parser.parse_args()


def setup(requested):
    """Join the process group when started by torchrun. Returns (rank, world size, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = requested.startswith("cuda") or (requested == "auto" and torch.cuda.is_available())
    if world == 1:
        if requested == "auto":
            mps = getattr(torch.backends, "mps", None)
            requested = "cuda" if cuda else "mps" if mps is not None and mps.is_available() else "cpu"
        return 0, 1, torch.device(requested)
    if cuda:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    dist.init_process_group("nccl" if cuda else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def load_data(path):
    """The splits exactly as NetCanvas prepared them (normalized, shaped to the Input)."""
    with np.load(path, allow_pickle=False) as data:
        splits = {name: (torch.from_numpy(data["x_" + name]), torch.from_numpy(data["y_" + name]))
                  for name in ("train", "val", "test")}
        class_names = data["class_names"].tolist()
    return splits, class_names


$optimizers

@torch.no_grad()
def evaluate(model, split, device, batch_size):
    """Mean loss and accuracy (None without one) over a split, in eval mode."""
    x_all, y_all = split
    n = len(y_all)
    if n == 0:
        return None, None
    model.eval()
    loss_sum = correct = 0.0
    for start in range(0, n, max(256, batch_size)):
        x = x_all[start:start + max(256, batch_size)].to(device)
        y = y_all[start:start + max(256, batch_size)].to(device)
        out = model(x)
        loss_sum += float(compute_loss(out, x, y)) * len(y)
        if count_correct is not None:
            correct += float(count_correct(out, y, x))
    model.train()
    return loss_sum / n, (correct / n if count_correct is not None else None)


def train_epoch(trained, optimizer, x_train, y_train, order, per_process, device, step, max_steps):
    """One pass over ``order`` (this process's samples, shuffled), ``per_process`` at a
    time. Returns the sums of loss, right predictions and samples, and the step count."""
    stop = len(order) - len(order) % per_process if DROP_LAST else len(order)
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    for start in range(0, stop, per_process):
        index = order[start:start + per_process]
        x, y = x_train[index].to(device), y_train[index].to(device)
        out = trained(x)
        loss = compute_loss(out, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under DistributedDataParallel this also averages the gradients
        optimizer.step()
        totals[0] += loss.detach() * len(y)
        if count_correct is not None:
            totals[1] += count_correct(out.detach(), y, x)
        totals[2] += len(y)
        step += 1
        if max_steps and step >= max_steps:
            break
    return totals, step


def percent(value):
    return "  n/a " if value is None else f"{value:6.2%}"


def main():
    args = parse_args()
    rank, world, device = setup(args.device)
    splits, class_names = load_data(args.data)
    x_train, y_train = splits["train"]

    torch.manual_seed(SEED)  # the same initialization as NetCanvas, on every process
    model = $class_name().to(device)
    if args.weights:
        model.load_state_dict(load_file(args.weights))
$logits    trained = model
    if world > 1:
        torch.manual_seed(SEED + rank)  # each process its own dropout
        trained = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = make_optimizer(model, args.lr)
    scheduler = make_scheduler(optimizer, args.epochs)

    per_process = math.ceil(args.batch_size / world)
    if world > 1:
        sampler = DistributedSampler(range(len(y_train)), world, rank, shuffle=True, seed=SEED)
    else:
        generator = torch.Generator().manual_seed(SEED)
    if rank == 0:
        print(f"training {len(y_train)} samples on {world} process(es), {device}, "
              f"{per_process} samples per process per step", flush=True)

    step, best, best_state, stale, finished = 0, math.inf, None, 0, "completed"
    for epoch in range(1, args.epochs + 1):
        started = time.perf_counter()
        if world > 1:
            sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every process
            order = torch.tensor(list(sampler))
        else:
            order = torch.randperm(len(y_train), generator=generator)
        model.train()
        totals, step = train_epoch(trained, optimizer, x_train, y_train, order, per_process, device,
                                   step, args.max_steps)
        if args.max_steps and step >= args.max_steps:
            finished = f"stopped after {step} steps (--max-steps)"
        if world > 1:
            dist.all_reduce(totals)  # every process learns the means over all of them
        loss_sum, correct_sum, seen = totals.tolist()
        train_loss = loss_sum / max(seen, 1)
        if not math.isfinite(train_loss):
            finished = (f"the loss became {train_loss} in epoch {epoch}; the learning rate "
                        f"{args.lr:g} is probably too high")
            break
        # every process evaluates (the module itself, not its DDP wrapper: no gradients to
        # average), so all take the same early-stopping decision
        val_loss, val_acc = evaluate(model, splits["val"], device, args.batch_size)
        if rank == 0:
            train_acc = correct_sum / seen if count_correct is not None and seen else None
            val_text = "n/a" if val_loss is None else f"{val_loss:.4f}"
            print(f"epoch {epoch:>3}/{args.epochs}  loss {train_loss:.4f}  acc {percent(train_acc)}  "
                  f"val loss {val_text}  val acc {percent(val_acc)}  "
                  f"{time.perf_counter() - started:.2f}s", flush=True)
        if finished != "completed":
            break
        if scheduler is not None:
            scheduler.step()
        if EARLY_STOPPING_PATIENCE and val_loss is not None:
            if math.isinf(best) or val_loss < best - 1e-4 * abs(best):
                best, stale = val_loss, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
                if stale >= EARLY_STOPPING_PATIENCE:
                    model.load_state_dict(best_state)
                    finished = f"stopped early after epoch {epoch}; kept the best weights"
                    break

    diverged = finished.startswith("the loss became")
    if rank == 0:
        print(finished, flush=True)
        if not diverged:
            test_loss, test_acc = evaluate(model, splits["test"], device, args.batch_size)
            if test_loss is not None:
                print(f"test loss {test_loss:.4f}  test accuracy {percent(test_acc).strip()}", flush=True)
$restore            tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            save_file(tensors, args.out, metadata={"steps": str(step), "class_names": json.dumps(class_names)})
            print(f"saved {args.out}", flush=True)
    if world > 1:
        # every process waits here for the others (process 0 tests and saves), and the DDP
        # wrapper goes before its process group: gloo can abort a process whose peer tears
        # the group down while it still holds work
        del trained
        dist.barrier()
        dist.destroy_process_group()
    return 1 if diverged else 0


if __name__ == "__main__":
    raise SystemExit(main())
'''
