"""Grading a correct q24 answer end to end, warm: `mlgrade grade q24 --file ANSWER --json` with the
offline grader, which runs the code in the wasm sandbox (17 rubric tests + 8 hidden cases, plus
the reference solution in a second instance).

Goal (issue 13): under 1.5 s warm on this machine. Baselines measured in the same run: the same
command for a concept question (q07, no code to run) and `python -c pass`.
The first call compiles CPython-on-WASI to native code once (reported as "first run", if the
cache is cold) and is excluded from the warm figures.

Run: python benchmarks/code_grade.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORRECT = "def can_shift(a, b):\n    # every rotation of a is a substring of a + a; O(n)\n    return len(a) == len(b) and b in a + a\n"
TEXT = ("Use a rolling-origin split: train on the past, validate on the following window, then move the "
        "origin forward, so no future data leaks into training.")


CPU: dict[str, list[float]] = {}


def timed(cmd: list[str], env: dict[str, str], name: str = "") -> float:
    """Wall-clock seconds; the CPU seconds of the whole process tree (mlgrade and the sandbox host
    it waits for) go to CPU[name]: on a shared, loaded machine they show what an idle one would do."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with {proc.returncode}")
    CPU.setdefault(name, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        answer, text = Path(tmp, "answer.py"), Path(tmp, "answer.txt")
        answer.write_text(CORRECT)
        text.write_text(TEXT)
        env = {**os.environ, "MLGRADE_GRADER": "offline", "MLGRADE_HOME": str(Path(tmp, "home"))}
        env.pop("OPENAI_API_KEY", None)
        code_cmd = [py, "-m", "mlgrade", "grade", "q24", "--file", str(answer), "--json"]
        text_cmd = [py, "-m", "mlgrade", "grade", "q07", "--file", str(text), "--json"]

        from mlgrade.code.sandbox import sandbox_status

        status = sandbox_status()
        if not status.available:
            raise SystemExit(f"no sandbox: {status.reason}")
        if not status.compiled:
            print(f"first run (compiles the module): {timed(code_cmd, env):6.2f} s")
        timed(code_cmd, env)  # warm the page cache too
        results = {"python -c pass": [], "grade q07 (text only)": [], "grade q24 (code run)": []}
        for _ in range(args.runs):  # interleaved, so load from other work hits all three alike
            results["python -c pass"].append(timed([py, "-c", "pass"], env, "python -c pass"))
            results["grade q07 (text only)"].append(timed(text_cmd, env, "grade q07 (text only)"))
            results["grade q24 (code run)"].append(timed(code_cmd, env, "grade q24 (code run)"))
    base = statistics.median(results["grade q07 (text only)"])
    for name, times in results.items():
        med = statistics.median(times)
        cpu = statistics.median(CPU[name])
        print(f"{name:24s} min {min(times):6.3f} s  median {med:6.3f} s  ratio to text grade {med / base:5.2f}"
              f"  |  CPU {cpu:6.3f} s (median)")
    code = statistics.median(results["grade q24 (code run)"])
    print(f"goal: grade q24 warm < 1.5 s -> {'met' if code < 1.5 else 'NOT met'} ({code:.2f} s wall); "
          f"the code run adds {code - base:.2f} s wall, "
          f"{statistics.median(CPU['grade q24 (code run)']) - statistics.median(CPU['grade q07 (text only)']):.2f} s CPU "
          f"over the text-only grade; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
