"""Compare the zoo files with torchvision itself (a manual check, not a test: torchvision is
no dependency of NetCanvas and does not install beside its torch; see
../shared/ENVIRONMENT.md for a separate venv that has it).

1. In a venv with torchvision: ``python tests/zoo/check_torchvision.py dump OUT_DIR`` builds
   each model (BatchNorm statistics and affine values randomized, so eval mode is not the
   identity), runs it on a fixed batch and saves its state_dict, input and output.
2. In NetCanvas's venv: ``python tests/zoo/check_torchvision.py compare OUT_DIR`` compiles each
   zoo file, checks that its state_dict has the same tensors with the same shapes in the same
   order (ViT: torchvision registers ``class_token`` first), loads torchvision's values and
   prints the largest difference of the outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
NAMES = ["resnet50", "mobilenet_v2", "vit_b_16", "densenet121", "efficientnet_b0", "shufflenet_v2_x1_0"]


def dump(out: Path) -> None:
    import torchvision.models as models  # (only in the torchvision venv)

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 224, 224)
    for name in NAMES:
        m = getattr(models, name)().eval()
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.uniform_(-0.1, 0.1)
                    mod.running_var.uniform_(0.5, 1.5)
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.1, 0.1)
            y = m(x)
        torch.save({"sd": list(m.state_dict().items()), "x": x, "y": y}, out / f"{name}.pt")
        print(name, sum(p.numel() for p in m.parameters()))


def compare(out: Path) -> int:
    sys.path.insert(0, str(HERE.parents[1]))
    from app.engine.compiler import compile_graph  # (only in NetCanvas's venv)
    from app.engine.project import load_project

    failures = 0
    for name in NAMES:
        saved = torch.load(out / f"{name}.pt", weights_only=True)
        theirs = [(k, v) for k, v in saved["sd"] if not k.endswith("num_batches_tracked")]
        if name == "vit_b_16":
            theirs = theirs[1:3] + theirs[0:1] + theirs[3:]
        model = compile_graph(load_project(HERE / f"{name}.netcanvas.json").graph).eval()
        ours = [(k, v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]
        shapes_differ = [(a, b) for (a, u), (b, v) in zip(theirs, ours) if u.shape != v.shape]
        if len(theirs) != len(ours) or shapes_differ:
            print(f"{name}: {len(theirs)} vs {len(ours)} tensors; first differing: {shapes_differ[:1]}")
            failures += 1
            continue
        model.load_state_dict({k: v for (k, _), (_, v) in zip(ours, theirs)}, strict=False)
        with torch.no_grad():
            diff = (model(saved["x"]) - saved["y"]).abs().max().item()
        print(f"{name}: {len(ours)} tensors of the same shapes; largest output difference {diff:.3g}")
        failures += diff > 1e-4
    return failures


if __name__ == "__main__":
    command, folder = sys.argv[1], Path(sys.argv[2])
    sys.exit(dump(folder) if command == "dump" else compare(folder))
