"""Cold start of `mlgrade --help` (and `questions list`) against `python -c 'import openai'`.

Goal (issue 3): mlgrade --help takes at most half the time of importing openai.
Run: python benchmarks/cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def best_of(cmd: list[str], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    baseline = best_of([py, "-c", "import openai"], args.runs)
    cases = {
        "mlgrade --help": [py, "-m", "mlgrade", "--help"],
        "mlgrade questions list": [py, "-m", "mlgrade", "questions", "list", "--json"],
        "python -c pass (interpreter only)": [py, "-c", "pass"],
    }
    print(f"baseline  import openai: min {baseline[0] * 1000:7.1f} ms  median {baseline[1] * 1000:7.1f} ms")
    for name, cmd in cases.items():
        lo, med = best_of(cmd, args.runs)
        print(f"{name:36s} min {lo * 1000:7.1f} ms  median {med * 1000:7.1f} ms  ratio (median) {med / baseline[1]:.2f}")
    print("goal: mlgrade --help ratio <= 0.50")


if __name__ == "__main__":
    main()
