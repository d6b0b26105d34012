"""`mlgrade batch --grader offline` of 5,000 seed-length answers: where its wall time goes.

Issue 22 asks for the 125 answers of ../shared/data/seed-dev.jsonl repeated x40 (5,000 answers,
`MLGRADE_EXEC=0`) in under 10 s wall. This runs that batch as a user would (a fresh MLGRADE_HOME,
a new results file) and reports its wall time, its CPU time (user+sys of the child, from
`resource.getrusage`) and its voluntary context switches (each is a wait: I/O, fsync, a lock). Beside
it, in the same moment, a pure-CPU control process burns the same CPU: if the batch's wall/CPU is
the control's, the wall time is the machine's load, not waiting, and only less CPU makes it
shorter. With `--against REV` the same batch also runs with REV's code (extracted with
`git archive`, this tree's rubrics), so the CPU figure is a ratio measured in the same run, and the
two results files are compared line for line (latency aside): they must be identical.
Without ../shared the answers are short synthetic ones (the figure then says so).

    /work/venv/bin/python benchmarks/offline_batch.py [--repeat-file 40] [--against main]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "data" / "seed-dev.jsonl"


def build_input(path: Path, times: int, source: Path) -> str:
    rows = []
    if source.exists():
        for n, line in enumerate(source.read_text(encoding="utf-8").splitlines()):
            rec = json.loads(line)
            rows.append((rec.get("answer_id") or str(n), f"q{int(rec['question_number']):02d}", rec["answer"]))
        what = f"seed-dev ({len(rows)} answers) x{times}"
    else:
        rows = [(f"s{i}", f"q{1 + i % 25:02d}", f"Answer {i}: scaling matters because distances mix units.")
                for i in range(125)]
        what = f"125 short synthetic answers x{times} (../shared not found)"
    with path.open("w", encoding="utf-8") as fh:
        for r in range(times):
            for item_id, qid, answer in rows:
                fh.write(json.dumps({"id": f"{item_id}-{r}", "question_id": qid, "answer": answer}) + "\n")
    return what


def spin(cpu_s: float) -> None:
    """The control: burn `cpu_s` of CPU and nothing else."""
    start = time.process_time()
    x = 0
    while time.process_time() - start < cpu_s:
        for i in range(10_000):
            x += i


def run_batch(src: Path, inp: Path, out: Path, home: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), MLGRADE_EXEC="0", MLGRADE_HOME=str(home))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mlgrade", "batch", str(inp), "--grader", "offline", "--out", str(out)],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        sys.exit(f"batch failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "waits": after.ru_nvcsw - before.ru_nvcsw}


def control(cpu_s: float) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--spin", str(cpu_s)], check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall, "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}


def lines(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for r in rows:
        r.pop("latency_ms", None)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat-file", type=int, default=40, help="how many times the 125 answers repeat (default 40)")
    ap.add_argument("--answers", type=Path, default=SEED)
    ap.add_argument("--against", metavar="REV", help="also run REV's code and compare CPU and results")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each code, alternating; the best is kept (default 3)")
    ap.add_argument("--spin", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.spin is not None:
        spin(args.spin)
        return
    with tempfile.TemporaryDirectory(prefix="mlgrade-obatch-") as tmp:
        work = Path(tmp)
        inp = work / "in.jsonl"
        what = build_input(inp, args.repeat_file, args.answers)
        trees = {"this tree": ROOT / "src"}
        if args.against:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.against, "src"], capture_output=True)
            if archive.returncode:
                sys.exit(f"git archive {args.against}: {archive.stderr.decode(errors='replace').strip()}")
            (work / "old").mkdir()
            subprocess.run(["tar", "-x", "-C", str(work / "old")], input=archive.stdout, check=True)
            for shared in ("rubrics", "prompts"):
                (work / "old" / shared).symlink_to(ROOT / shared)
            trees = {args.against: work / "old" / "src", **trees}
        print(f"{what}: mlgrade batch --grader offline, MLGRADE_EXEC=0, fresh MLGRADE_HOME; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"{'code':<14} {'wall s':>7} {'CPU s':>6} {'waits':>6} {'wall/CPU':>8}   control: wall/CPU of the same CPU burnt alone")
        got: dict[str, dict] = {}
        for rnd in range(args.rounds):  # alternating, so a burst of load hits both alike
            for k, (name, src) in enumerate(trees.items()):
                for stale in (work / f"{k}.jsonl", work / f"home{k}"):
                    subprocess.run(["rm", "-rf", str(stale)], check=True)  # a fresh run each round
                r = run_batch(src, inp, work / f"{k}.jsonl", work / f"home{k}")
                c = control(r["cpu"])
                print(f"{name:<14} {r['wall']:>7.2f} {r['cpu']:>6.2f} {r['waits']:>6} {r['wall'] / r['cpu']:>8.2f}   "
                      f"control {c['wall'] / c['cpu']:.2f}   (round {rnd + 1})")
                best = got.setdefault(name, r)
                got[name] = {key: min(best[key], r[key]) for key in r}
        for name, r in got.items():
            print(f"best {name:<9} {r['wall']:>7.2f} {r['cpu']:>6.2f}")
        if args.against:
            old, new = got[args.against], got["this tree"]
            same = lines(work / "0.jsonl") == lines(work / "1.jsonl")
            print(f"CPU: {old['cpu'] / new['cpu']:.2f}x less than {args.against}; wall {old['wall'] / new['wall']:.2f}x; "
                  f"results files {'IDENTICAL' if same else 'DIFFER'} (latency_ms aside)")
            if not same:
                sys.exit(1)
        print("(goal: < 10 s wall. waits = voluntary context switches: few means the wall is CPU, not I/O)")


if __name__ == "__main__":
    main()
