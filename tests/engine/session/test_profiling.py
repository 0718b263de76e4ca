"""Run > Profile's child process: the profile comes back as ``profile --json`` gives it, a
graph with errors comes back as a message naming the node, and a cancelled one ends."""

from __future__ import annotations

import time

from app.engine.examples import load_example
from app.engine.session.profiling import ProfileJob


def wait(job: ProfileJob, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while (outcome := job.poll()) is None:
        assert time.monotonic() < deadline, "the profile did not end"
        time.sleep(0.05)
    return outcome


def test_a_profile_comes_back_with_every_node():
    project = load_example("xor")
    outcome = wait(ProfileJob(project, batch_size=4, repeats=1))
    assert outcome.error is None
    ids = [n["id"] for n in outcome.profile["nodes"]]
    assert set(ids) == set(project.graph.nodes) - {"input"}
    assert outcome.profile["batch_size"] == 4 and outcome.profile["total_flops"] > 0


def test_a_graph_with_errors_is_named_not_profiled():
    from app.engine.graph import Edge, Node

    project = load_example("xor")  # a 2-feature input: no picture for a 2-d convolution
    project.graph.add_node(Node("conv", "Conv2d", {"out_channels": 1, "kernel_size": 3}))
    project.graph.add_edge(Edge("input", "conv"))
    outcome = wait(ProfileJob(project, repeats=1))
    assert outcome.profile is None and "errors" in outcome.error and "conv" in outcome.error


def test_a_cancelled_profile_ends_its_process():
    job = ProfileJob(load_example("lenet5"), repeats=50)
    job.cancel()
    assert not job.process.is_alive() and job.poll().error == "cancelled"
