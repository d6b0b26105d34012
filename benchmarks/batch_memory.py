"""Peak memory of `grade_many` on 10k vs 100k answers: it must stay flat (goal: within 20 %).

Each size runs in a fresh process (peak RSS is per process) with a grader that makes no
network call, so the figure is the engine's own: streaming inputs, spooling by question,
appending results, resume bookkeeping, the response cache and the final summary.
Then the same 100k output is resumed (every id already done) to show resume scanning is flat too.

    /work/venv/bin/python benchmarks/batch_memory.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

QIDS = tuple(f"q{i:02d}" for i in range(1, 26))


def child(n: int, work: Path, resume: bool) -> None:
    from mlgrade.batch.engine import grade_many
    from mlgrade.graders.fake import FakeGrader

    inp = work / f"in-{n}.jsonl"
    if not resume:
        with inp.open("w", encoding="utf-8") as fh:
            for i in range(n):
                fh.write(json.dumps({"id": f"a{i}", "question_id": QIDS[i % len(QIDS)], "candidate": f"c{i % 50}",
                                     "answer": f"Answer {i}: labelled and unlabelled data, scaled features, and a "
                                               "rolling-origin split so the model never sees the future."}) + "\n")
    started = time.perf_counter()
    # the fake grader's call log would itself grow with n: keep only the last call
    grader = FakeGrader(default_status="partial", calls=deque(maxlen=1))  # type: ignore[arg-type]
    summary = grade_many([inp], work / f"out-{n}.jsonl", grader=grader, concurrency=16)
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"n": n, "peak_mb": round(peak_mb, 1), "wall_s": round(wall, 1), "written": summary.run.done,
                      "already_done": summary.already_done}))


def measure(n: int, work: Path, resume: bool = False) -> dict:
    args = [sys.executable, __file__, "--child", str(n), "--work", str(work)] + (["--resume"] if resume else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True, env={**os.environ})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.work, args.resume)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["MLGRADE_HOME"] = str(work / "home")
        rows = [measure(n, work) for n in args.sizes]
        rows.append({**measure(args.sizes[-1], work, resume=True), "n": f"{args.sizes[-1]} (resume)"})
        print(f"{'answers':>16}  {'peak RSS MB':>11}  {'wall s':>7}  {'written':>8}  {'already done':>12}")
        for r in rows:
            print(f"{r['n']!s:>16}  {r['peak_mb']:>11.1f}  {r['wall_s']:>7.1f}  {r['written']:>8}  {r['already_done']:>12}")
        base = rows[0]["peak_mb"]
        print(f"peak RSS {args.sizes[-1]:,} / {args.sizes[0]:,} = {rows[-2]['peak_mb'] / base:.2f} "
              f"(resume: {rows[-1]['peak_mb'] / base:.2f}); goal <= 1.20")


if __name__ == "__main__":
    main()
