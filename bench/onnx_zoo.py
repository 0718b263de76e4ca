"""Import every real model of ONNX's backend test data (python bench/onnx_zoo.py [NAME...]).

The data ships inside the onnx package: ``light/*.onnx`` (real architectures whose weights
are ConstantOfShape fills, with the output onnx's runner stored for its dummy input
``arange(n) / n``) and ``pytorch-converted/*/model.onnx`` (single torch layers with a stored
input and output). Each is imported, run in NetCanvas on the stored input and compared with
the stored output; prints one line per model (``ok`` with the largest relative difference,
or why it does not import) and the counts. NAME filters by substring. With ``--random``
the light nets' fills are replaced by random weights (seeded) and the import is compared
with onnxruntime instead: constant weights make every class score alike, which a wrong
import could match too.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.engine.compiler import compile_graph  # noqa: E402
from app.engine.errors import NetCanvasError  # noqa: E402
from app.engine.importers.onnx_import import compare_with_onnxruntime, import_onnx  # noqa: E402
from app.engine.inference import analyze  # noqa: E402
from app.engine.weights import apply_weights  # noqa: E402

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
TOLERANCE = 1e-4


def cases() -> list[Path]:
    """The model files: the light nets, then the pytorch-converted layers."""
    return sorted((DATA / "light").glob("*.onnx")) + sorted((DATA / "pytorch-converted").glob("*/model.onnx"))


def _read(path: Path) -> np.ndarray:
    t = onnx.TensorProto()
    t.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(t)


def stored_io(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """The inputs and the expected first output of the model at ``path``."""
    if path.parent.name == "light":
        model = onnx.load(str(path), load_external_data=False)
        inits = {i.name for i in model.graph.initializer}
        inputs = []
        for x in model.graph.input:
            if x.name in inits:
                continue
            shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in x.type.tensor_type.shape.dim)
            n = int(np.prod(shape))
            inputs.append((np.arange(n).reshape(shape) / n).astype(np.float32))
        return inputs, _read(path.with_name(path.stem + "_output_0.pb"))
    folder = path.parent / "test_data_set_0"
    inputs = [_read(p) for p in sorted(folder.glob("input_*.pb"))]
    return inputs, _read(folder / "output_0.pb")


def randomized(path: Path, out: Path, seed: int = 0) -> Path:
    """The light net at ``path`` with each ConstantOfShape fill replaced by a random
    initializer (scaled by its fan-in; 1-d ones, such as a BatchNorm's variance, in [0.5,
    1.5]), written to ``out``."""
    model = onnx.load(str(path))
    rng = np.random.default_rng(seed)
    shapes = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    keep = []
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in shapes:
            dims = [int(v) for v in shapes[node.input[0]]]
            if len(dims) == 1:
                value = rng.uniform(0.5, 1.5, dims)
            else:
                value = rng.standard_normal(dims) / np.sqrt(max(1, int(np.prod(dims[1:]))))
            model.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), node.output[0]))
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    onnx.save(model, str(out))
    return out


def run_random(path: Path) -> float:
    """The largest difference between onnxruntime and the import of ``randomized(path)``."""
    with tempfile.TemporaryDirectory() as tmp:
        model = randomized(path, Path(tmp) / path.name)
        return compare_with_onnxruntime(import_onnx(model), batch=1)


def run_case(path: Path) -> float:
    """The largest difference (relative where the output exceeds 1) between the imported
    model on the stored input and the stored output. Raises ``NetCanvasError`` when the
    import fails."""
    result = import_onnx(path)
    graph = result.project.graph
    a = analyze(graph)
    net = compile_graph(graph, a).eval()
    apply_weights(net, result.state, "imported weights")
    inputs, expected = stored_io(path)
    by_node = dict(zip(result.inputs.values(), inputs)) if len(result.inputs) == len(inputs) else None
    if by_node is None:
        raise NetCanvasError(f"{len(result.inputs)} inputs imported, {len(inputs)} stored")
    with torch.no_grad():
        got = net(*(torch.from_numpy(np.array(by_node[i], np.float32)) for i in a.inputs)).double().numpy()
    expected = expected.astype(np.float64)
    if got.shape != expected.shape:
        raise NetCanvasError(f"output shape {list(got.shape)}, stored {list(expected.shape)}")
    return float(np.max(np.abs(got - expected))) / max(1.0, float(np.max(np.abs(expected))))


def main(argv: list[str]) -> int:
    onnxruntime.set_default_logger_severity(3)
    ok = bad = 0
    random = "--random" in argv
    argv = [a for a in argv if a != "--random"]
    for path in cases():
        if random and path.parent.name != "light":
            continue
        name = path.stem if path.parent.name == "light" else path.parent.name
        if argv and not any(a in name for a in argv):
            continue
        start = time.perf_counter()
        try:
            diff = run_random(path) if random else run_case(path)
        except NetCanvasError as e:
            bad += 1
            print(f"FAIL {name}: {str(e)[:300]}")
            continue
        took = time.perf_counter() - start
        good = diff <= TOLERANCE
        ok += good
        bad += not good
        print(f"{'ok  ' if good else 'DIFF'} {name}: {diff:.2e} ({took:.1f} s)")
    print(f"{ok} import and match, {bad} do not")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
