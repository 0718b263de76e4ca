"""Fuzz every loader NetCanvas has and count how each case ended (python bench/fuzz.py).

    python bench/fuzz.py                     # the full profile: 21,000 cases (20,000 without ONNX)
    python bench/fuzz.py --cases 500         # 500 in all, shared in the same proportions
    python bench/fuzz.py --families project,weights --cases 200 --seed 7

Families (tests/fuzz/): ``project`` (project files: valid graphs with random parameters,
then mutated; load_project + analyze + ``netcanvas check``), ``dataset`` (IDX pairs and
MNIST folders, CSV tables, image folders), ``weights`` (safetensors with random headers and
metadata, PyTorch files; read_weights + the input normalization + predict), ``cli``
(command lines with odd options), and ``onnx`` (mutated ONNX exports, from
tests/fuzz/onnx_cases.py where that file exists).

Each case ends ok, as a clean error (the engine's own error, or a CLI exit code with a
message), as an escape (any other exception, a warning, output a UTF-8 terminal cannot
take, a MemoryError from an allocation past the cap below) or as a hang (past
``--case-seconds``, 5 s: a timer signal interrupts the case). Each family runs in a child
process: a case stuck in C code, where no signal gets through, is seen from here after
``--watchdog`` seconds; the child is killed, the case counted as a hang, and a new child
goes on with the rest. The child's address space is capped (``--memory-gb`` above what it
uses at start) so that a case asking for gigabytes fails there instead of taking the
machine.

Prints one table (family, cases, ok, clean errors, escapes, hangs, cases per second) and
the first example of each distinct escape and hang: exception type, message, the place in
NetCanvas's code where it was raised, and the input. Exit code 1 when there was any
escape or hang. The pytest side of the same suite: ``pytest tests/fuzz`` (a few cases of
each family) and ``pytest tests/fuzz --fuzz`` (the full profile).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 600  # imports and the family's warm-up, on a slow machine
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ------------------------------------------------------------------------------------ the child
def worker(family_name: str, cases: int, seed: int, case_seconds: float, memory_gb: float) -> None:
    """Run ``cases`` cases of one family, one JSON line per event on stdout."""
    from tests.fuzz.families import families, run_family
    from tests.fuzz.harness import Tally

    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the parent asks for the stack of a stuck case
    family = families()[family_name]
    _cap_memory(memory_gb)
    real_stdout = os.dup(1)
    os.dup2(2, 1)  # whatever the code under test prints goes to stderr, not into the protocol
    emit = os.fdopen(real_stdout, "w", buffering=1)

    def on_case(case) -> None:
        emit.write(json.dumps({"start": family.describe(case)[:600]}) + "\n")

    last = [time.perf_counter()]

    def on_outcome(outcome) -> None:
        now = time.perf_counter()
        emit.write(json.dumps({"outcome": outcome.__dict__, "seconds": now - last[0]}) + "\n")
        last[0] = now

    def on_case_timed(case) -> None:
        last[0] = time.perf_counter()
        on_case(case)

    family.warm()  # imports and a first valid case, before the watchdog's clock starts
    emit.write(json.dumps({"ready": True}) + "\n")
    run_family(family, cases, Tally(), seed=seed, on_case=on_case_timed, on_outcome=on_outcome,
               seconds=max(case_seconds, family.seconds))  # a family's own bound (cli: 30 s) holds
    emit.write(json.dumps({"done": True}) + "\n")


def _cap_memory(gb: float) -> None:
    try:
        import resource
    except ImportError:  # Windows: no cap
        return
    used = 0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    used = int(line.split()[1]) * 1024
    except OSError:
        return
    limit = used + int(gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))


# ------------------------------------------------------------------------------------ the parent
def run_family_watched(name: str, cases: int, seed: int, args, tally, log) -> None:
    """Run one family in child processes until ``cases`` cases have ended."""
    from tests.fuzz.harness import Outcome

    done = 0
    restarts = 0
    while done < cases:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--cases", str(cases - done),
               "--seed", str(seed + restarts), "--case-seconds", str(args.case_seconds),
               "--memory-gb", str(args.memory_gb)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen"}
        with open(args.log_dir / f"fuzz-{name}.log", "a") as errors:  # the children's stderr
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda out=proc.stdout, q=lines: [q.put(line) for line in out] + [q.put(None)],
                         daemon=True).start()
        current = None
        finished = False
        ready = False
        while True:
            try:
                line = lines.get(timeout=args.watchdog if ready else STARTUP_SECONDS)
            except queue.Empty:
                where = _stack_of(proc, args.log_dir / f"fuzz-{name}.log")
                proc.kill()
                proc.wait()
                if not ready:
                    log(f"  {name}: the worker did not start within {STARTUP_SECONDS} s (at {where}); giving up")
                    return
                what = "running a case" if current else "generating the next case"
                tally.add(name, Outcome("hang", "Hang", f"no answer for {args.watchdog:g} s while {what}",
                                        where, current or "?"), args.watchdog)
                done += 1
                log(f"  {name}: {what} hung for {args.watchdog:g} s (at {where}); restarting the worker")
                break
            if line is None:
                proc.wait()
                if not finished:  # the child died: the case it was running is the culprit
                    tally.add(name, Outcome("escape", f"worker died (exit {proc.returncode})",
                                            "the process ended during a case", "?", current or "?"))
                    done += 1
                    log(f"  {name}: the worker died during a case (exit {proc.returncode}); restarting it")
                break
            event = json.loads(line)
            if event.get("ready"):
                ready = True
            elif "start" in event:
                current = event["start"]
            elif "outcome" in event:
                tally.add(name, Outcome(**event["outcome"]), event["seconds"])
                done += 1
                current = None
                if done % 250 == 0:
                    log(f"  {name}: {done}/{cases}")
            elif event.get("done"):
                finished = True
        restarts += 1
        if finished and done < cases:  # hypothesis ran out of distinct inputs
            log(f"  {name}: stopped after {done} cases (no new inputs)")
            break


def _stack_of(proc: subprocess.Popen, log: Path) -> str:
    """Where the stuck child is: it prints its stack to its log on SIGUSR1 (faulthandler,
    which works inside C code too); the innermost frame of NetCanvas's code in it."""
    import signal

    if not hasattr(signal, "SIGUSR1"):
        return "?"
    size = log.stat().st_size if log.exists() else 0
    try:
        proc.send_signal(signal.SIGUSR1)
    except OSError:
        return "?"
    time.sleep(2.0)
    try:
        text = log.read_text(errors="replace")[size:]
    except OSError:
        return "?"
    frames = [line.strip() for line in text.splitlines() if line.strip().startswith("File ")]
    ours = [f for f in frames if "/app/" in f] or frames
    return ours[0] if ours else "?"  # faulthandler lists the innermost frame first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fuzz NetCanvas's loaders; print a table of outcomes.")
    parser.add_argument("--cases", type=int, help="cases in all (default: the full profile, 21,000), shared "
                                                   "between the families in the profile's proportions")
    parser.add_argument("--families", help="a comma-separated subset (project, dataset, weights, cli, onnx)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the first worker of each family "
                                                                "(default: random)")
    parser.add_argument("--case-seconds", type=float, default=5.0, help="time bound of one case (default 5)")
    parser.add_argument("--watchdog", type=float, default=60.0,
                        help="seconds without news from a worker before its case counts as a hang (default 60)")
    parser.add_argument("--memory-gb", type=float, default=4.0,
                        help="address space a worker may add to what it uses at start (default 4)")
    parser.add_argument("--jobs", type=int, default=1, help="families run side by side (default 1)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.cases, args.seed or 0, args.case_seconds, args.memory_gb)
        return 0
    if args.cases is not None and args.cases < 1:
        parser.error(f"--cases must be 1 or more; received {args.cases}")

    from tests.fuzz.families import families
    from tests.fuzz.harness import Tally

    available = families()
    chosen = list(available) if not args.families else [n.strip() for n in args.families.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in available]
    if unknown:
        parser.error(f"unknown families {unknown}; these exist: {', '.join(available)}")
    weights = {n: available[n].fuzz_cases for n in chosen}
    total = args.cases if args.cases is not None else sum(weights.values())
    share = {n: max(1, round(total * w / sum(weights.values()))) for n, w in weights.items()}
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    print(f"fuzzing {sum(share.values()):,} cases: " + ", ".join(f"{n} {c:,}" for n, c in share.items())
          + f" (seed {seed}, {args.case_seconds:g} s per case)", flush=True)
    if "onnx" not in available:
        print("(no tests/fuzz/onnx_cases.py: the onnx family is left out)", flush=True)

    args.log_dir = Path(tempfile.mkdtemp(prefix="netcanvas-fuzz-logs-"))
    print(f"(the workers' stderr goes to {args.log_dir})", flush=True)
    tally = Tally()
    lock = threading.Lock()

    def log(text: str) -> None:
        with lock:
            print(text, flush=True)

    start = time.perf_counter()
    pending = list(share.items())

    def next_family() -> None:
        while True:
            with lock:
                if not pending:
                    return
                name, n = pending.pop(0)
            t0 = time.perf_counter()
            run_family_watched(name, n, seed, args, tally, log)
            tally.wall[name] = time.perf_counter() - t0
            log(f"{name}: {n:,} cases in {tally.wall[name]:.0f} s")

    threads = [threading.Thread(target=next_family) for _ in range(max(1, args.jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print()
    print(tally.table())
    print(f"({time.perf_counter() - start:.0f} s in all; cases/s: the cases' own time; wall cases/s: with "
          "generating them and starting the workers)")
    print()
    print(tally.escapes())
    bad = sum(c["escape"] + c["hang"] for c in tally.counts.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
