"""Which priority the editor's training run should have (python bench/priority.py).

A quick model of bench/training.py that a noisy machine can still answer: the same
training (LeNet-5's minibatches on random data, torch's default threads) runs for a few
seconds at a time in a child process under each candidate scheme (nice, Linux policy),
and at normal priority as the headless run does, the schemes taking turns many times so
that the machine's drift reaches all of them alike; with ``--load N`` CPU-bound
processes at normal priority beside it. Meanwhile this process plays the editor: a timer
every 50-150 ms (how late it fires is the event-loop lateness), and every ~0.5 s a 15 ms
"paint" of pure CPU. Prints each scheme's throughput relative to the normal-priority
run's, the CPU time the run got for each second a competitor got (the share the scheduler
gives it, which the machine's other programs outside this process group do not move), and
the probe's p99 lateness.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def train(conn, nice: int, policy: str | None, seconds: float) -> None:
    """Minibatches of LeNet-5 for ``seconds`` under the scheme; sends minibatches per second."""
    import torch
    from torch import nn

    from app.engine.training.worker import _lower_priority

    _lower_priority(nice, policy)
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                          nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    for _ in range(5):  # warm up
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    conn.send("go")
    conn.recv()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        steps += 1
    conn.send(steps / (time.perf_counter() - start))


def editor(until: float, rng: random.Random) -> list[float]:
    """Sleep 50-150 ms, note how late the wake-up was; every ~0.5 s burn 15 ms (a paint)."""
    late, next_paint = [], time.perf_counter() + 0.5
    while time.perf_counter() < until:
        due = time.perf_counter() + rng.uniform(0.05, 0.15)
        time.sleep(max(0.0, due - time.perf_counter()))
        late.append(time.perf_counter() - due)
        if time.perf_counter() >= next_paint:
            end = time.perf_counter() + 0.015
            while time.perf_counter() < end:
                pass
            next_paint = time.perf_counter() + 0.5
    return late


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one(ctx, scheme: tuple[int, str | None], seconds: float, load: int, rng) -> tuple[float, list[float], float]:
    """Minibatches per second, the probe's lateness, and the CPU time the run got for each
    second one competitor got (a share that the other programs on the machine, outside
    this process group, do not move)."""
    competitors = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)]
    try:
        parent, child = ctx.Pipe()
        process = ctx.Process(target=train, args=(child, *scheme, seconds))
        process.start()
        parent.recv()
        before = [cpu_seconds(process.pid)] + [cpu_seconds(c.pid) for c in competitors]
        parent.send("start")
        late = editor(time.perf_counter() + seconds, rng)
        rate = parent.recv()
        after = [cpu_seconds(process.pid)] + [cpu_seconds(c.pid) for c in competitors]
        process.join()
    finally:
        for c in competitors:
            c.kill()
            c.wait()
    used = [b - a for a, b in zip(before, after)]
    share = used[0] / max(1e-9, statistics.mean(used[1:])) if competitors else float("nan")
    return rate, late, share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--schemes", default="0:normal,10:normal,0:batch,1:batch,2:normal,2:batch",
                        help="nice:policy,... (the first one is the headless reference: keep 0:normal)")
    args = parser.parse_args()
    schemes = [(int(n), None if p == "normal" else p) for n, p in (s.split(":") for s in args.schemes.split(","))]
    ctx = multiprocessing.get_context("spawn")
    rng = random.Random(0)
    rates = {s: [] for s in schemes}
    late = {s: [] for s in schemes}
    shares = {s: [] for s in schemes}
    for r in range(args.rounds):
        order = schemes[:] if r % 2 == 0 else schemes[::-1]
        for s in order:
            rate, lateness, share = one(ctx, s, args.seconds, args.load, rng)
            shares[s].append(share)
            rates[s].append(rate)
            late[s] += lateness
        print(f"round {r + 1}: " + "  ".join(f"{n}/{p or 'normal'} {rates[(n, p)][-1]:.1f}"
                                           for n, p in schemes), flush=True)
    ref = rates[schemes[0]]
    print(f"\n{args.load} competing process(es), {os.cpu_count()} CPUs, {args.rounds} rounds of {args.seconds} s")
    for s in schemes:
        ratio = statistics.median(a / b for a, b in zip(rates[s], ref))
        ms = sorted(1000 * v for v in late[s])
        p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
        share = statistics.median(shares[s]) if args.load else float("nan")
        print(f"nice {s[0]:2d} {s[1] or 'normal':6s}: throughput / nice-0 normal {ratio:.3f}   "
              f"CPU of the run per CPU of a competitor {share:.2f}   "
              f"editor lateness p50 {ms[len(ms) // 2]:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
