"""PyTorch code export (model.py, weights, data, train.py) and multi-process training."""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import os
import runpy
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from app.engine import cli
from app.engine.compiler import compile_graph
from app.engine.datasets import RawData, prepare
from app.engine.errors import GraphError
from app.engine.examples import list_examples, load_example
from app.engine.export.onnx_export import ExportError
from app.engine.export.python_export import class_name_for, export_python
from app.engine.export.train_script import objective_source
from app.engine.graph import Edge, Graph, Node
from app.engine.inference import analyze
from app.engine.layers import CATALOGUE
from app.engine.layers.spec import V1_PARAMS
from app.engine.project import Project
from app.engine.samples import sample_tensors
from app.engine.training import Trainer, make_objective, prepare_run
from app.engine.weights import load_weights, save_weights
from tests.helpers import chain

EXAMPLES = [e.name for e in list_examples()]


def import_file(path: Path, name: str | None = None):
    """``path`` imported as a fresh module, not left in sys.modules."""
    spec = importlib.util.spec_from_file_location(name or f"exported_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


def sample_inputs(project: Project, batch: int = 4) -> tuple[torch.Tensor, ...]:
    return sample_tensors(project.graph, analyze(project.graph), batch, seed=1)


def scrambled_weights(project: Project, path: Path) -> None:
    """Weights unlike any initialization (BatchNorm statistics included), saved to ``path``."""
    model = compile_graph(project.graph)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                noise = torch.randn(t.shape, generator=generator) * 0.3
                t.copy_(noise.abs() + 0.5 if name.endswith("running_var") else noise)
    save_weights(model, path)


def check_export(project: Project, tmp_path: Path) -> tuple[Path, object]:
    """Export with scrambled weights; model.py, loaded with them, must match the compiled
    graph, and its fresh initialization must be NetCanvas's for the same seed."""
    scrambled_weights(project, tmp_path / "w.safetensors")
    out = tmp_path / "export"
    report = export_python(project, out, tmp_path / "w.safetensors", data=False)
    assert report.max_difference <= 1e-6
    assert {"model.py", "weights.safetensors", "README.md"} <= {p.name for p in out.iterdir()}
    assert imported_modules(out / "model.py") <= {"torch"}, "model.py must need nothing but torch"

    module = import_file(out / "model.py")
    exported = getattr(module, report.class_name)()
    exported.load_state_dict(load_file(str(out / "weights.safetensors")))
    compiled = compile_graph(project.graph)
    load_weights(compiled, tmp_path / "w.safetensors")
    inputs = sample_inputs(project)
    with torch.no_grad():
        assert torch.allclose(exported.eval()(*inputs), compiled.eval()(*inputs), rtol=0, atol=1e-6)
    assert list(exported.state_dict()) == list(compiled.state_dict())

    seed = project.training["seed"]
    torch.manual_seed(seed)
    fresh = getattr(module, report.class_name)()
    torch.manual_seed(seed)
    reference = compile_graph(project.graph)
    for name, t in reference.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], t), name
    return out, module


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_exports_to_a_standalone_module_with_the_same_outputs(name, tmp_path):
    check_export(load_example(name), tmp_path)


def catalogue_project() -> Project:
    """Every layer type of the catalogue in one graph, with three Inputs (one called
    ``self``, one feeding an Embedding) and node ids that shadow Python builtins."""
    g = Graph()
    nodes = [
        ("input", "Input", {"shape": [1, 8, 8]}),
        ("self", "Input", {"shape": [1, 8, 8]}),
        ("tokens", "Input", {"shape": [5]}),
        ("c_same", "Conv2d", {"out_channels": 4, "kernel_size": 4, "padding": "same"}),
        ("c_plain", "Conv2d", {"out_channels": 4, "kernel_size": [3, 3], "padding": 1, "bias": False}),
        ("mul", "Multiply", {}),
        ("cat", "Concat", {"dim": 1}),
        ("bn2", "BatchNorm2d", {"eps": 1e-3, "momentum": 0.2}),
        ("up", "Upsample", {"scale_factor": 2, "mode": "bilinear"}),
        ("avg", "AvgPool2d", {"kernel_size": 2}),
        ("ct", "ConvTranspose2d", {"out_channels": 2, "kernel_size": 3, "stride": 2, "padding": 1,
                                   "output_padding": 1}),
        ("max", "MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
        ("ad", "AdaptiveAvgPool2d", {"output_size": [4, 4]}),
        ("rows", "Reshape", {"shape": [8, -1]}),
        ("gru", "GRU", {"hidden_size": 6, "num_layers": 2, "bidirectional": True, "dropout": 0.1}),
        ("ln", "LayerNorm", {"eps": 1e-4}),
        ("c1d", "Conv1d", {"out_channels": 5, "kernel_size": 3, "dilation": 1, "stride": 1}),
        ("bn1", "BatchNorm1d", {}),
        ("rnn", "RNN", {"hidden_size": 7}),
        ("lstm", "LSTM", {"hidden_size": 4, "bidirectional": True}),
        ("last", "LastStep", {}),
        ("gelu", "GELU", {}),
        ("leaky", "LeakyReLU", {"negative_slope": 0.2}),
        ("elu", "ELU", {"alpha": 0.5}),
        ("tanh", "Tanh", {}),
        ("id", "Identity", {}),
        ("drop", "Dropout", {"p": 0.3}),
        ("fc", "Linear", {"out_features": 6}),
        ("emb", "Embedding", {"num_embeddings": 10, "embedding_dim": 3}),
        ("flat", "Flatten", {}),
        ("fc_tokens", "Linear", {"out_features": 6, "bias": False}),
        ("sum", "Add", {}),
        ("relu", "ReLU", {}),
        ("sig", "Sigmoid", {}),
        ("soft", "Softmax", {"dim": -1}),
        ("logsoft", "LogSoftmax", {}),
    ]
    for node_id, type_name, params in nodes:
        g.add_node(Node(node_id, type_name, params))
    edges = [("input", "c_same"), ("self", "c_plain"), ("c_same", "mul"), ("c_plain", "mul", 1),
             ("c_same", "cat"), ("mul", "cat", 1), ("cat", "bn2"), ("bn2", "up"), ("up", "avg"),
             ("avg", "ct"), ("ct", "max"), ("max", "ad"), ("ad", "rows"), ("rows", "gru"), ("gru", "ln"),
             ("ln", "c1d"), ("c1d", "bn1"), ("bn1", "rnn"), ("rnn", "lstm"), ("lstm", "last"),
             ("last", "gelu"), ("gelu", "leaky"), ("leaky", "elu"), ("elu", "tanh"), ("tanh", "id"),
             ("id", "drop"), ("drop", "fc"), ("tokens", "emb"), ("emb", "flat"), ("flat", "fc_tokens"),
             ("fc", "sum"), ("fc_tokens", "sum", 1), ("sum", "relu"), ("relu", "sig"), ("sig", "soft"),
             ("soft", "logsoft")]
    for source, target, *port in edges:
        g.add_edge(Edge(source, target, port[0] if port else 0))
    return Project(graph=g, name="Every layer (catalogue test)")


def test_every_catalogue_layer_exports(tmp_path):
    project = catalogue_project()
    a = analyze(project.graph)
    assert a.ok, a.errors
    # the version-1 catalogue in one graph; every type alone: tests/engine/test_catalogue.py
    assert {n.type for n in project.graph.nodes.values()} == set(V1_PARAMS)
    out, module = check_export(project, tmp_path)
    text = (out / "model.py").read_text()
    assert "def forward(self, input, self_, tokens):" in text
    assert "self.c_same = SameConv2d(1, 4, kernel_size=4)" in text  # an even "same" window
    assert "self.gru = GRU(4, 6, num_layers=2, batch_first=True, dropout=0.1, bidirectional=True)" in text
    assert "self.max = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)" in text
    assert "self.avg = nn.AvgPool2d(kernel_size=2)" in text
    assert "self.up = nn.Upsample(scale_factor=2.0, mode='bilinear')" in text
    assert "self.ad = nn.AdaptiveAvgPool2d(output_size=(4, 4))" in text and "self.cat = Concat()" in text
    assert "self.emb = Embedding(10, 3)" in text and "self.rows = Reshape(shape=(8, -1))" in text
    assert "self.ln = nn.LayerNorm(12, eps=0.0001)" in text
    assert "sum_1 = self.sum(fc, fc_tokens)" in text  # fx keeps builtins unshadowed
    assert module.INPUT_SHAPES == {"input": (1, 8, 8), "self": (1, 8, 8), "tokens": (5,)}


def test_model_py_reads_like_hand_written_code(tmp_path):
    report = export_python(load_example("lenet5"), tmp_path, data=False)
    text = (tmp_path / "model.py").read_text()
    assert report.class_name == "LeNet5" and "class LeNet5(nn.Module):" in text
    assert "        self.conv1 = nn.Conv2d(1, 6, kernel_size=5)  # -> [6, 24, 24]\n" in text
    assert "        self.pool1 = nn.MaxPool2d(kernel_size=2)  # -> [6, 12, 12]\n" in text
    assert "        self.fc1 = nn.Linear(256, 120)  # -> [120]\n" in text
    assert "        conv1 = self.conv1(input)\n" in text and "        return fc3\n" in text
    assert "= None" not in text and "input_1" not in text and "type: ignore" not in text
    assert "NetCanvasModel" not in text and "import app" not in text
    resnet = export_python(load_example("resnet"), tmp_path / "resnet", data=False)
    text = (tmp_path / "resnet" / "model.py").read_text()
    assert "class Add(nn.Module):" in text and "b1_add = self.b1_add(b1_bn2, stem_relu)" in text
    assert resnet.class_name == "SmallResidualNetwork"
    lstm = (export_python(load_example("lstm"), tmp_path / "lstm", data=False).folder / "model.py").read_text()
    assert "LSTM = _sequence_output(nn.LSTM)" in lstm and "self.lstm = LSTM(8, 64, batch_first=True)" in lstm


@pytest.mark.parametrize("name, expected", [
    ("LeNet-5 on digits", "LeNet5"), ("MLP 784-120-80-10", "MLP"), ("XOR 2-8-1", "XOR"),
    ("Convolutional autoencoder", "ConvolutionalAutoencoder"), ("3 layers", "Model3Layers"),
    ("Small residual network (Add skip connections)", "SmallResidualNetwork"), ("", "Model"),
    ('evil """ name\n import os', "EvilNameImport"), ("LSTM", "LSTMModel"), ("for", "Model"), ("None", "NoneModel"),
])
def test_class_names(name, expected):
    assert class_name_for(name) == expected


def test_a_project_name_cannot_break_out_of_the_docstrings(tmp_path):
    project = load_example("xor")
    project.name = 'x"""\nimport os; os.system("false")  # \\'
    report = export_python(project, tmp_path)
    for file in ("model.py", "train.py"):
        tree = ast.parse((tmp_path / file).read_text())
        assert not any(isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "system" for n in ast.walk(tree))
    assert report.class_name.isidentifier()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_script(args: list[str], cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def xor_export(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("xor")
    export_python(load_example("xor"), out)
    return out


def test_data_npz_holds_the_splits_netcanvas_trains_on(xor_export):
    run = prepare_run(load_example("xor"))
    with np.load(xor_export / "data.npz", allow_pickle=False) as data:
        for split in ("train", "val", "test"):
            assert np.array_equal(data[f"x_{split}"], getattr(run.dataset, split).x.numpy())
            assert np.array_equal(data[f"y_{split}"], getattr(run.dataset, split).y.numpy())
        assert data["class_names"].tolist() == run.dataset.class_names
        assert np.array_equal(data["mean"], run.dataset.mean.numpy())
    assert imported_modules(xor_export / "train.py") <= {"argparse", "json", "math", "os", "time", "pathlib",
                                                         "numpy", "torch", "safetensors", "model"}


def test_train_py_in_one_process_reproduces_netcanvas_training(xor_export, monkeypatch, capsys):
    # run as `python train.py ...` would, in this interpreter (a new one costs seconds)
    monkeypatch.syspath_prepend(str(xor_export))
    monkeypatch.setattr(sys, "argv", ["train.py", "--epochs", "2", "--device", "cpu"])
    monkeypatch.delitem(sys.modules, "model", raising=False)
    try:
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_path(str(xor_export / "train.py"), run_name="__main__")
    finally:
        sys.modules.pop("model", None)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "on 1 process(es)" in out and "epoch   2/2" in out and "test accuracy" in out
    trained = load_file(str(xor_export / "trained.safetensors"))
    engine = Trainer(prepare_run(load_example("xor"), epochs=2, device="cpu"))
    engine.run()
    for name, t in engine.model.state_dict().items():
        assert torch.allclose(trained[name], t, atol=1e-6), name


def test_train_py_under_torchrun_with_two_processes(xor_export, tmp_path):
    proc = run_script(["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                       "--master_port", str(free_port()), "train.py", "--epochs", "3", "--max-steps", "12",
                       "--device", "cpu", "--out", str(tmp_path / "ddp.safetensors")], xor_export, timeout=180)
    assert "on 2 process(es), cpu, 8 samples per process per step" in proc.stdout
    assert proc.stdout.count("epoch   1/3") == 1, proc.stdout  # process 0 alone reports
    assert "stopped after 12 steps" in proc.stdout and "saved" in proc.stdout
    module = import_file(xor_export / "model.py")
    model = module.XOR()
    model.load_state_dict(load_file(str(tmp_path / "ddp.safetensors")))
    initial = load_file(str(xor_export / "weights.safetensors"))
    assert not torch.equal(model.fc1.weight, initial["fc1.weight"])


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return cli.main(list(args), out, err), out.getvalue(), err.getvalue()


def test_cli_train_nproc_2_reports_like_one_process_and_saves_weights(tmp_path):
    code, out, err = run_cli("train", "xor", "--nproc", "2", "--epochs", "2", "--device", "cpu",
                             "--out", str(tmp_path), "--json")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["epoch"] for line in lines[:-1]] == [1, 2]
    assert lines[-1]["weights"] == str(tmp_path / "xor.safetensors") and lines[-1]["reason"] == "completed"
    assert 0 <= lines[-1]["test_accuracy"] <= 1
    load_weights(compile_graph(load_example("xor").graph), tmp_path / "xor.safetensors")


def test_cli_export_python_prints_what_it_wrote_and_the_difference(tmp_path):
    code, out, err = run_cli("export", "xor", "--python", str(tmp_path / "xor"))
    assert code == 0, err
    assert "model.py (class XOR)" in out and "data.npz (144 train / 16 val / 40 test)" in out
    assert "matches the compiled graph within 0" in out
    assert {"model.py", "weights.safetensors", "data.npz", "train.py", "README.md"} <= \
        {p.name for p in (tmp_path / "xor").iterdir()}


def test_objective_in_train_py_matches_the_engine(tmp_path):
    """compute_loss / count_correct as written into train.py give the engine's numbers."""
    cases = [("xor", {}), ("xor", {"loss": "BCEWithLogitsLoss"}), ("xor", {"loss": "MSELoss"}),
             ("linear", {}), ("deep_mlp", {}), ("mlp", {"loss": "BCEWithLogitsLoss"}),
             ("mlp", {"loss": "NLLLoss"}), ("autoencoder", {}), ("three_conv", {"loss": "BCELoss"})]
    generator = torch.Generator().manual_seed(0)
    for i, (name, change) in enumerate(cases):
        project = load_example(name)
        settings = {**project.training, **change}
        a = analyze(project.graph)
        classes = 2 if name == "xor" else 10
        objective = make_objective(project.graph, a, settings, classes, a.shapes[a.inputs[0]])
        source, skipped = objective_source(SimpleNamespace(analysis=a, settings=settings, objective=objective))
        assert (skipped is not None) == (objective.loss_node != a.output)
        path = tmp_path / f"objective_{i}.py"
        path.write_text("import torch\nimport torch.nn.functional as F\n\n\n" + source)
        written = import_file(path)
        x = torch.rand(6, *a.shapes[a.inputs[0]], generator=generator)
        out = torch.rand(6, *a.shapes[objective.loss_node], generator=generator)
        y = torch.randint(0, classes, (6,), generator=generator)
        assert torch.allclose(written.compute_loss(out, x, y), objective.loss(out, x, y)), (name, change)
        if objective.correct is None:
            assert written.count_correct is None
        else:
            assert int(written.count_correct(out, y)) == int(objective.correct(out, y)), (name, change)


def test_bad_targets_and_graphs_are_clear_errors(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ExportError, match="is not a folder"):
        export_python(load_example("xor"), a_file, data=False)
    with pytest.raises(ExportError, match="cannot create the folder"):
        export_python(load_example("xor"), a_file / "sub", data=False)
    code, _, err = run_cli("export", "xor", "--python", str(a_file / "sub"))
    assert code == 1 and "cannot create the folder" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        run_cli("export", "xor")
    with pytest.raises(SystemExit):
        run_cli("train", "xor", "--nproc", "0")

    broken = load_example("lenet5")
    broken.graph.nodes["conv1"].params["kernel_size"] = 30
    with pytest.raises(GraphError, match="conv1"):
        export_python(broken, tmp_path / "broken")
    code, _, err = run_cli("export", "xor", "--python", str(tmp_path / "w"), "--weights", str(a_file))
    assert code == 1 and "file.txt" in err


def test_a_project_that_cannot_train_still_exports_its_model(tmp_path):
    project = catalogue_project()  # three Inputs, and data that fits none of them
    project.dataset["name"] = "xor"
    report = export_python(project, tmp_path)
    assert "train.py" not in report.files and not (tmp_path / "train.py").exists()
    assert report.notes and "the project cannot be trained" in report.notes[0]
    assert "Input 'input' expects [1, 8, 8]" in report.notes[0]


def test_cli_train_nproc_refuses_devices_it_cannot_use(tmp_path):
    code, _, err = run_cli("train", "xor", "--nproc", "2", "--device", "mps", "--out", str(tmp_path))
    assert code == 1 and "mps" in err


@pytest.fixture
def one_process_group(tmp_path):
    """A gloo process group of one process, in this process: DistributedTrainer without
    starting any."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_distributed_trainer_matches_the_trainer_in_one_process(one_process_group, tmp_path):
    from app.engine.training.distributed import DistributedTrainer

    run = prepare_run(load_example("xor"), epochs=2, device="cpu")
    events = []
    result = DistributedTrainer(run, events.append, rank=0, world=1, weights_path=tmp_path / "w.safetensors").run()
    assert result.reason == "completed" and (tmp_path / "w.safetensors").exists()
    epochs = [e for e in events if type(e).__name__ == "EpochEvent"]
    assert [e.epoch for e in epochs] == [1, 2] and 0 <= epochs[-1].train_accuracy <= 1
    batches = [e for e in events if type(e).__name__ == "BatchEvent"]
    assert batches[0].batches == 9 and len(batches) == 18  # 144 samples, 16 per step


def test_distributed_trainer_stops_together_when_asked(one_process_group, tmp_path):
    from app.engine.training.distributed import DistributedTrainer

    run = prepare_run(load_example("xor"), epochs=5, device="cpu")
    asked = iter([False, False, True])
    trainer = DistributedTrainer(run, rank=0, world=1, weights_path=tmp_path / "w.safetensors",
                                 stop_requested=lambda: next(asked, True))
    result = trainer.run()
    assert result.reason == "stopped" and result.steps == 3 and "minibatch 4" in result.message
    assert (tmp_path / "w.safetensors").exists()  # a stopped run keeps what it learned


def test_distributed_trainer_reports_divergence(one_process_group):
    from app.engine.training.distributed import DistributedTrainer

    project = Project(chain(("input", "Input", {"shape": [4]}), ("fc1", "Linear", {"out_features": 16}),
                            ("relu", "ReLU"), ("fc2", "Linear", {"out_features": 3})), "blobs")
    project.training.update({"lr": 1e9, "batch_size": 16, "device": "cpu"})
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 240)
    x = (rng.normal(0, 4, (3, 4))[y] + rng.normal(0, 0.5, (240, 4))).astype(np.float32)
    run = prepare_run(project, dataset=prepare(RawData(x, y, ["a", "b", "c"], "blobs"), "blobs", {}))
    result = DistributedTrainer(run, rank=0, world=1).run()
    assert result.reason == "diverged" and "learning rate" in result.message


def test_mask_objective_in_train_py_matches_the_engine(tmp_path, monkeypatch):
    """target "mask": train.py's loss and pixel accuracy are the engine's, on the exported data."""
    project = load_example("unet")
    export_python(project, tmp_path / "unet")
    monkeypatch.syspath_prepend(str(tmp_path / "unet"))
    written = import_file(tmp_path / "unet" / "train.py")
    a = analyze(project.graph)
    with np.load(tmp_path / "unet" / "data.npz") as data:
        x = torch.from_numpy(data["x_test"][:5])
        mean, std = torch.from_numpy(data["mean"]), torch.from_numpy(data["std"])
    objective = make_objective(project.graph, a, project.training, 10, a.shapes[a.inputs[0]], mean, std)
    out = torch.randn(5, *a.shapes[a.output], generator=torch.Generator().manual_seed(0))
    y = torch.zeros(5, dtype=torch.long)
    assert torch.allclose(written.compute_loss(out, x, y), objective.loss(out, x, y))
    assert float(written.count_correct(out, y, x)) == pytest.approx(float(objective.correct(out, y, x)))
