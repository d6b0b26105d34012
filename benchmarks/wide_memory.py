"""Peak memory of reading and grading a wide form export, 1,000 vs 10,000 rows (goal: flat).

A wide file has one row per candidate and one column per question (here 5 questions, answers of
~150 characters, all different). For each format (CSV, XLSX written by openpyxl) and size,
fresh processes measure (the XLSX keeps its text in a shared-strings table, as Excel writes it):
  - read:  tracemalloc peak of streaming every answer out of the file (batch.inputs.iter_items,
           the dry-run inspection pass included), i.e. Python allocations only;
  - openpyxl (XLSX only, for comparison): tracemalloc peak of openpyxl's own read-only load,
           which keeps the shared-strings table in memory;
  - grade: peak RSS of the whole `grade_many` run with a grader that makes no network call.
The figure is the 10,000-row peak divided by the 1,000-row peak, measured in the same run.

    python benchmarks/wide_memory.py [--sizes 1000 10000] [--formats csv xlsx]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

QUESTIONS = ["For a time-series dataset, which cross-validation technique would you suggest, and why?",
             "What is semi-supervised machine learning?", "Explain the k-nearest neighbours (KNN) algorithm.",
             "What is ensemble learning?", "What is an activation function in machine learning?"]
HEADER = ["Timestamp", "Email Address", "Your name", *QUESTIONS, "Score"]


def _row(i: int) -> list[str]:
    answers = [f"Answer {i}.{q}: a rolling-origin split keeps the future out of training, labelled and unlabelled "
               f"data mixed, distance-based neighbours, bagging and boosting, ReLU non-linearity {i * 7 + q}."
               for q in range(len(QUESTIONS))]
    return ["2024-05-01 10:00:00", f"c{i}@example.com", f"Candidate {i}", *answers, str(i % 10)]


def write_file(path: Path, n: int) -> None:
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(HEADER)
            for i in range(n):
                w.writerow(_row(i))
        return
    # not openpyxl: it writes inline strings, while Excel and form exports keep every text cell in
    # a shared-strings table, which is what a reader must cope with
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from batch_helpers import write_xlsx_shared_strings

    write_xlsx_shared_strings(path, [HEADER, *(_row(i) for i in range(n))])


def child(path: Path, phase: str) -> None:
    from mlgrade.batch.inputs import iter_items
    from mlgrade.batch.wide import inspect_wide
    from mlgrade.rubrics import load_rubrics

    bank = load_rubrics()
    started = time.perf_counter()
    if phase == "read":
        import tracemalloc

        import openpyxl.reader.excel  # noqa: F401  (imported before measuring, as in the openpyxl phase)

        tracemalloc.start()
        m = inspect_wide(path, bank)
        count = sum(1 for _ in iter_items([path], bank))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result = {"items": count, "answers": m.answers, "peak_mb": peak / 2**20}
    elif phase == "openpyxl":  # for comparison: openpyxl's own read-only load, shared strings in memory
        import tracemalloc

        from openpyxl import load_workbook

        tracemalloc.start()
        wb = load_workbook(path, read_only=True, data_only=True)
        count = sum(1 for _ in wb.worksheets[0].iter_rows(min_row=2, values_only=True)) * len(QUESTIONS)
        wb.close()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result = {"items": count, "answers": count, "peak_mb": peak / 2**20}
    else:
        from mlgrade.batch.engine import grade_many
        from mlgrade.graders.fake import FakeGrader

        grader = FakeGrader(default_status="partial", calls=deque(maxlen=1))  # type: ignore[arg-type]
        out = path.with_suffix(path.suffix + ".out.jsonl")
        s = grade_many([path], out, grader=grader, bank=bank, concurrency=16, use_cache=False)
        result = {"items": s.run.done, "answers": s.run.graded,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # Linux: KiB
    result["wall_s"] = time.perf_counter() - started
    print(json.dumps(result))


def measure(path: Path, phase: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(path), "--phase", phase],
                         capture_output=True, text=True, check=True, env={**os.environ})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs=2, default=[1_000, 10_000])
    ap.add_argument("--formats", nargs="+", default=["csv", "xlsx"], choices=["csv", "xlsx"])
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--phase", default="read", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.phase)
        return
    small, big = args.sizes
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["MLGRADE_HOME"] = str(work / "home")
        print(f"{'format':>6}  {'phase':>8}  {'rows':>7}  {'answers':>8}  {'peak MB':>8}  {'wall s':>6}   ratio {big:,}/{small:,}")
        for fmt in args.formats:
            files = {}
            for n in (small, big):
                files[n] = work / f"form-{n}.{fmt}"
                write_file(files[n], n)
            phases = [("read", "tracemalloc"), ("grade", "RSS")]
            if fmt == "xlsx":
                phases.insert(1, ("openpyxl", "tracemalloc"))
            for phase, what in phases:
                r = {n: measure(files[n], phase) for n in (small, big)}
                for n in (small, big):
                    ratio = f"{r[big]['peak_mb'] / r[small]['peak_mb']:.2f} ({what})" if n == big else ""
                    print(f"{fmt:>6}  {phase:>8}  {n:>7,}  {r[n]['answers']:>8,}  {r[n]['peak_mb']:>8.1f}  "
                          f"{r[n]['wall_s']:>6.1f}   {ratio}", flush=True)


if __name__ == "__main__":
    main()
