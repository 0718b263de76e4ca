"""Engine benchmarks, measured side by side in one run (python bench/engine.py).

1. Train-step time of the compiled graph divided by a hand-written nn.Module of the same
   network (LeNet-5 and the MLP 784-120-80-10, batch 64). Goal <= 1.02.
2. Validation + shape inference (``analyze``) on a generated 1,000-node graph. Goal <= 10 ms.
3. ``analyze`` on ResNet-50 written with blocks (tests/zoo/resnet50.netcanvas.json: 16
   bottleneck nodes of two block types). Goal <= 20 ms "cold": right after a change to the
   block definitions (an edit inside a block), which empties the expansion caches; "warm"
   is a re-analysis after an edit outside the blocks (the caches hold).
4. The incremental analysis (``incremental.Analyzer``, what the editor runs on every edit)
   on the 1,000-node graph, per edit: parameter edits of a first conv of a residual block
   (its shapes change up to the block's second conv) and of a second conv (its change breaks
   the Add, so every shape after it goes: the re-inference of half the graph bounds it); a
   node added fed by a node in the middle (add_layer) and removed again; an Add's skip edge
   removed (the shapes after it go) and put back. Goal <= 2 ms; a full ``analyze`` beside it
   (row 2).

Timings interleave the two contenders round by round and report medians, because these
machines are noisy; compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from app.engine.compiler import compile_graph
from app.engine.examples import load_example
from app.engine.graph import Edge, Graph, Node
from app.engine.incremental import Analyzer
from app.engine.inference import analyze
from app.engine.project import load_project

RESNET50 = Path(__file__).resolve().parents[1] / "tests" / "zoo" / "resnet50.netcanvas.json"


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.relu1, self.pool1 = nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2)
        self.conv2, self.relu2, self.pool2 = nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1, self.relu3 = nn.Linear(256, 120), nn.ReLU()
        self.fc2, self.relu4 = nn.Linear(120, 84), nn.ReLU()
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        return self.fc3(self.relu4(self.fc2(x)))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1, self.relu1 = nn.Linear(784, 120), nn.ReLU()
        self.fc2, self.relu2 = nn.Linear(120, 80), nn.ReLU()
        self.fc3 = nn.Linear(80, 10)

    def forward(self, x):
        x = self.relu1(self.fc1(self.flatten(x)))
        return self.fc3(self.relu2(self.fc2(x)))


def step_timer(model: nn.Module, batch: int):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()

    def steps(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
        return (time.perf_counter() - start) / n

    return steps


def compare_train_step(name: str, hand: nn.Module, rounds: int, steps: int, batch: int) -> dict:
    torch.manual_seed(0)
    compiled = compile_graph(load_example(name).graph)
    assert sum(p.numel() for p in compiled.parameters()) == sum(p.numel() for p in hand.parameters())
    timers = {"compiled": step_timer(compiled, batch), "hand-written": step_timer(hand, batch)}
    for t in timers.values():
        t(10)  # warm up allocator and kernels
    samples = {k: [] for k in timers}
    for r in range(rounds):
        order = list(timers) if r % 2 == 0 else list(reversed(timers))
        for k in order:
            samples[k].append(timers[k](steps))
    med = {k: statistics.median(v) for k, v in samples.items()}
    ratios = [c / h for c, h in zip(samples["compiled"], samples["hand-written"])]
    return {"name": name, "compiled_ms": med["compiled"] * 1e3, "hand_ms": med["hand-written"] * 1e3,
            "ratio": statistics.median(ratios)}


def generated_graph(n: int) -> Graph:
    """A ResNet-like graph of ``n`` nodes: conv-bn-relu blocks with Add skip connections."""
    g = Graph()
    g.add_node(Node("input", "Input", {"shape": [16, 32, 32]}))
    prev, i = "input", 0
    while len(g.nodes) + 7 <= n - 3:
        i += 1
        ids = [f"c{i}a", f"b{i}a", f"r{i}a", f"c{i}b", f"b{i}b", f"add{i}", f"r{i}"]
        types = ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "Add", "ReLU"]
        for node_id, t in zip(ids, types):
            params = {"out_channels": 16, "kernel_size": 3, "padding": 1} if t == "Conv2d" else {}
            g.add_node(Node(node_id, t, params))
        chain = [prev] + ids[:5]
        for a, b in zip(chain, chain[1:]):
            g.add_edge(Edge(a, b), check=False)
        g.add_edge(Edge(ids[4], ids[5], 0), check=False)
        g.add_edge(Edge(prev, ids[5], 1), check=False)
        g.add_edge(Edge(ids[5], ids[6]), check=False)
        prev = ids[6]
    while len(g.nodes) < n - 3:  # pad to exactly n nodes with identity layers
        node_id = f"id{len(g.nodes)}"
        g.add_node(Node(node_id, "Identity", {}))
        g.add_edge(Edge(prev, node_id), check=False)
        prev = node_id
    for node_id, t, p in [("pool", "AdaptiveAvgPool2d", {"output_size": 1}), ("flat", "Flatten", {}),
                          ("fc", "Linear", {"out_features": 10})]:
        g.add_node(Node(node_id, t, p))
        g.add_edge(Edge(prev, node_id), check=False)
        prev = node_id
    return g


def time_analyze(n: int, repeats: int) -> dict:
    g = generated_graph(n)
    a = analyze(g)
    assert a.ok, a.errors[:3]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        analyze(g)
        times.append(time.perf_counter() - start)
    return {"nodes": len(g.nodes), "median_ms": statistics.median(times) * 1e3,
            "p90_ms": sorted(times)[int(0.9 * len(times))] * 1e3}


def time_incremental(n: int, repeats: int) -> dict:
    """Median milliseconds of ``Analyzer.analysis()`` after one edit, per kind of edit: two
    parameter edits, and the structural edits of the canvas (each undone, untimed or as the
    next row, so every repeat starts from the same graph)."""
    g = generated_graph(n)
    analyzer = Analyzer(g)
    convs = [node_id for node_id in g.nodes if node_id.startswith("c")]
    result = {}
    for kind, suffix in (("within a block", "a"), ("breaking an Add", "b")):
        target = [c for c in convs if c.endswith(suffix)][len(convs) // 4]
        times = []
        for i in range(repeats):
            g.set_params(target, {"out_channels": 17 if i % 2 == 0 else 16, "kernel_size": 3, "padding": 1})
            start = time.perf_counter()
            analyzer.analysis()
            times.append(time.perf_counter() - start)
        result[kind] = statistics.median(times) * 1e3
    blocks = sum(1 for node_id in g.nodes if node_id.startswith("add"))
    source, skip = f"r{blocks // 2}", f"add{blocks // 2 + 1}"
    edge = next(e for e in g.edges if e.target == skip and e.target_port == 1)
    timed: dict[str, list[float]] = {k: [] for k in ("add a node fed by a node", "remove that node",
                                                      "remove an edge (an Add's skip)", "add it back")}

    def timing(kind: str) -> None:
        start = time.perf_counter()
        analyzer.analysis()
        timed[kind].append(time.perf_counter() - start)

    for i in range(repeats):
        g.add_node(Node("extra", "Conv2d", {"out_channels": 8, "kernel_size": 3}))
        g.add_edge(Edge(source, "extra"))
        timing("add a node fed by a node")
        g.remove_node("extra")
        timing("remove that node")
        index = g.edges.index(edge)
        g.remove_edge(edge)
        timing("remove an edge (an Add's skip)")
        g.add_edge(edge, index=index)
        timing("add it back")
    result.update({k: statistics.median(v) * 1e3 for k, v in timed.items()})
    assert analyzer.full_runs == 0, "a structural edit took a full analysis"
    analyzer.close()
    return result


def time_resnet50_blocks(repeats: int) -> dict:
    """Median and p90 of ``analyze`` on ResNet-50 with blocks, cold and warm (see above)."""
    graph = load_project(RESNET50).graph
    a = analyze(graph)
    assert a.ok and a.total_params == 25_557_032, a.errors[:3]
    result: dict = {"nodes": len(graph.nodes)}
    for kind in ("cold", "warm"):
        times = []
        for _ in range(repeats):
            if kind == "cold":
                graph.blocks.touch()  # what an edit inside a block does: the expansions are redone
            start = time.perf_counter()
            analyze(graph)
            times.append(time.perf_counter() - start)
        result[kind] = (statistics.median(times) * 1e3, sorted(times)[int(0.9 * len(times))] * 1e3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rounds, steps = (3, 5) if args.quick else (15, 30)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 64")
    print(f"{'train step':<12}{'compiled ms':>13}{'hand ms':>10}{'ratio':>8}  goal <= 1.02")
    torch.manual_seed(0)
    for name, hand in (("lenet5", LeNet5()), ("mlp", MLP())):
        r = compare_train_step(name, hand, rounds, steps, 64)
        verdict = "ok" if r["ratio"] <= 1.02 else "OVER"
        print(f"{name:<12}{r['compiled_ms']:>13.3f}{r['hand_ms']:>10.3f}{r['ratio']:>8.3f}  {verdict}")
    r = time_analyze(1000, 10 if args.quick else 50)
    verdict = "ok" if r["median_ms"] <= 10 else "OVER"
    print(f"analyze on a {r['nodes']}-node graph: median {r['median_ms']:.2f} ms, "
          f"p90 {r['p90_ms']:.2f} ms  goal <= 10 ms  {verdict}")
    r = time_incremental(1000, 10 if args.quick else 50)
    for kind, median in r.items():
        verdict = "ok" if median <= 2 else "OVER"
        print(f"incremental analysis per edit, {kind}: median {median:.2f} ms  goal <= 2 ms  {verdict}")
    r = time_resnet50_blocks(10 if args.quick else 50)
    for kind in ("cold", "warm"):
        median, p90 = r[kind]
        verdict = "ok" if median <= 20 else "OVER"
        print(f"analyze ResNet-50 with blocks ({r['nodes']} nodes), {kind}: median {median:.2f} ms, "
              f"p90 {p90:.2f} ms  goal <= 20 ms  {verdict}")


if __name__ == "__main__":
    main()
