"""Offline grading speed on seed-length answers and on Mohler's short ones, and an equality check
of every grade against a base revision.

Speed (the default): grades the expert sets of our own 25 questions (seed-dev + seed-dev2, about
550 characters an answer) and mohler-dev.csv (short answers, rubrics derived from the reference
answer), against a TF-IDF cosine of the same answers in the same run, and times the pathological
answers of issue 27 H3 (20,000 characters of sentence punctuation). Setup (imports, rubric
loading and derivation, compiling) is timed apart from grading. Grading is the full path a user
gets: the offline grader's judgments, then evidence checks and scoring in `grading.finalize`.
Goals (issues 5, 22, 27): >= 1,000 answers/s on one core for both workloads; any 20,000-character
answer under 0.2 s.

Equality (`--check-against REV`): grades seed-dev, seed-dev2, mohler-dev and scientsbank-dev with
the code of REV (extracted with `git archive` into a temporary folder) and with this tree's code,
each in its own process, both on THIS tree's rubrics (derived rubrics are derived once, here, and
handed to both), and compares every grade field for field (score, band, statuses, evidence,
comments, misconceptions, review flags, feedback). Prints each difference; exits 1 on any. It also
prints both trees' grading time, CPU and wall, measured in the same run (alternating rounds, best kept).

    /work/venv/bin/python benchmarks/offline_speed.py [--data-dir ../shared/data] [--repeat 3]
    /work/venv/bin/python benchmarks/offline_speed.py --check-against 530fcaa [--rounds 3]
    /work/venv/bin/python benchmarks/offline_speed.py --interleave 2767bb9 [--rounds 3]

Interleaved (`--interleave REV`): REV's code and this tree's graded in one process, their warm
passes over the seed sets alternating (5 x --rounds each), the best CPU time of each kept: the
before/after ratio that survives a shared machine's load coming and going.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETS = ("seed-dev.jsonl", "seed-dev2.jsonl", "mohler-dev.csv", "scientsbank-dev.csv")
# Fields that differ between two runs of the same code: never part of the comparison.
VOLATILE = ("latency_ms",)
# Issue 27 H3: runs of sentence punctuation with no space after them (a quadratic regex once).
PATHOLOGICAL = {f"{c!r} x 19,990": c * 19_990 + "x" for c in ".!?;:"} | {
    "'.\\n' x 9,995": ".\n" * 9_995 + "x", "'. ' x 9,995": ". " * 9_995 + "x",
    "'e.g.' x 5,000": "e.g." * 5_000, "'- ' x 10,000": "- " * 10_000,
    "'a' x 20,000": "a" * 20_000, "'word ' x 4,000": "word " * 4_000,
}


def load_items(data_dir: Path, names: tuple[str, ...] = SETS) -> tuple[dict[str, dict], dict[str, list[tuple[str, str, str]]]]:
    """Rubrics (as JSON) by key, and per data set its (item id, rubric key, answer) triples. The
    seed sets use this tree's rubrics; Mohler and SciEntsBank get rubrics derived by this tree."""
    from mlgrade.evaluation.derive import derive_offline
    from mlgrade.rubrics import load_rubrics

    bank = load_rubrics(ROOT / "rubrics", include_builtin=False)
    rubrics: dict[str, dict] = {}
    sets: dict[str, list[tuple[str, str, str]]] = {}
    for name in names:
        path = data_dir / name
        if not path.exists():
            print(f"skipped {name}: {path} not found", file=sys.stderr)
            continue
        items = sets[name] = []
        if name.endswith(".jsonl"):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
                rec = json.loads(line)
                rubric = bank.get(f"q{int(rec['question_number']):02d}")
                rubrics.setdefault(rubric.id, rubric.model_dump(mode="json"))
                items.append((f"{name}:{rec.get('answer_id') or n}", rubric.id, rec["answer"]))
            continue
        derived: dict[tuple[str, str], str] = {}
        with path.open(encoding="utf-8", newline="") as fh:
            for n, row in enumerate(csv.DictReader(fh)):
                key = (row["question"], row["reference_answer"])
                if key not in derived:
                    rubric = derive_offline(*key)
                    derived[key] = f"{name}:{rubric.id}"
                    rubrics[derived[key]] = rubric.model_dump(mode="json")
                items.append((f"{name}:{row.get('answer_id') or n}", derived[key], row["student_answer"]))
    return rubrics, sets


# --------------------------------------------------------------------------- the worker (any revision)


def worker(job: Path, out: Path, repeat: int) -> None:
    """Grade a job file with whatever `mlgrade` is importable (the PYTHONPATH the parent chose).
    Uses only APIs that exist in every revision compared: Rubric, OfflineGrader.judge, finalize."""
    from mlgrade.grading import finalize
    from mlgrade.graders.offline import OfflineGrader
    from mlgrade.models import Rubric

    spec = json.loads(job.read_text(encoding="utf-8"))
    rubrics = {k: Rubric.model_validate(v) for k, v in spec["rubrics"].items()}
    grader = OfflineGrader()
    results: dict[str, dict] = {}
    timings: dict[str, dict[str, float]] = {}
    for name, items in spec["sets"].items():
        for item_id, key, answer in items:  # first pass: the grades compared (cold caches)
            grade = finalize(rubrics[key], answer, grader.judge(rubrics[key], answer), grader="offline")
            dump = grade.model_dump(mode="json")
            for f in VOLATILE:
                dump.pop(f, None)
            results[item_id] = dump
    for name, items in spec["sets"].items():  # warm passes: the speed compared
        best_wall = best_cpu = float("inf")
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            for _, key, answer in items:
                finalize(rubrics[key], answer, grader.judge(rubrics[key], answer), grader="offline")
            best_wall = min(best_wall, time.perf_counter() - wall)
            best_cpu = min(best_cpu, time.process_time() - cpu)
        timings[name] = {"n": len(items), "wall": best_wall, "cpu": best_cpu}
    out.write_text(json.dumps({"results": results, "timings": timings}), encoding="utf-8")


def run_worker(src: Path, job: Path, out: Path, repeat: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), MLGRADE_EXEC="0")
    subprocess.run([sys.executable, __file__, "--worker", str(job), str(out), "--repeat", str(repeat)],
                   env=env, check=True)
    return json.loads(out.read_text(encoding="utf-8"))


def differences(old: dict, new: dict, path: str = "") -> list[str]:
    """Every leaf where two grade dumps differ, as 'path: old -> new'."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            out += differences(old.get(k, "<absent>"), new.get(k, "<absent>"), f"{path}.{k}" if path else str(k))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if old == new else [f"{path}: {json.dumps(old)[:200]} -> {json.dumps(new)[:200]}"]


@contextmanager
def rev_checkout(rev: str) -> Iterator[Path | None]:
    """A temporary folder with REV's src/, beside links to this tree's rubrics and prompts (the
    bank's vocabulary, topicality's, is this tree's too; the package finds them beside its parent,
    as in a checkout); None when git cannot produce REV."""
    with tempfile.TemporaryDirectory(prefix="mlgrade-rev-") as tmp:
        work = Path(tmp)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=False)
        if archive.returncode:
            print(f"git archive {rev}: {archive.stderr.decode(errors='replace').strip()}", file=sys.stderr)
            yield None
            return
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive.stdout, check=True)
        for shared in ("rubrics", "prompts"):
            (work / shared).symlink_to(ROOT / shared)
        yield work


def check_against(rev: str, data_dir: Path, repeat: int, rounds: int = 3) -> int:
    rubrics, sets = load_items(data_dir)
    if not sets:
        print(f"no data sets found in {data_dir}", file=sys.stderr)
        return 2
    with rev_checkout(rev) as work:
        if work is None:
            return 2
        job = work / "job.json"
        job.write_text(json.dumps({"rubrics": rubrics, "sets": sets}), encoding="utf-8")
        # Alternating rounds, the best time of each tree kept: on a shared machine the load changes
        # within seconds, and two trees timed one after the other once can differ by 1.5x either way.
        old = run_worker(work / "src", job, work / "old.json", repeat)
        new = run_worker(ROOT / "src", job, work / "new.json", repeat)
        for _ in range(rounds - 1):
            for ran, src, out in ((old, work / "src", "old.json"), (new, ROOT / "src", "new.json")):
                again = run_worker(src, job, work / out, repeat)["timings"]
                for name, t in ran["timings"].items():
                    t["cpu"], t["wall"] = min(t["cpu"], again[name]["cpu"]), min(t["wall"], again[name]["wall"])
    bad = 0
    print(f"{'data set':<22} {'answers':>7} {'differ':>6}   {rev} CPU s / wall s   this tree CPU s / wall s   "
          f"CPU ratio  answers/s (this tree, CPU)")
    for name, items in sets.items():
        differ = 0
        for item_id, _, _ in items:
            diffs = differences(old["results"][item_id], new["results"][item_id])
            if diffs:
                differ += 1
                for d in diffs[:8]:
                    print(f"  {item_id}: {d}")
        bad += differ
        a, b = old["timings"][name], new["timings"][name]
        print(f"{name:<22} {len(items):>7} {differ:>6}   {a['cpu']:>8.3f} / {a['wall']:<8.3f}      "
              f"{b['cpu']:>8.3f} / {b['wall']:<8.3f}         {a['cpu'] / b['cpu']:>6.2f}x  {b['n'] / b['cpu']:>8,.0f}")
    print(f"(best of {repeat} warm passes each in {rounds} alternating rounds, judge + finalize; CPU = user+sys "
          f"of the grading process; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())})")
    print("equality: " + ("IDENTICAL on every answer" if not bad else f"{bad} answers DIFFER"))
    return 1 if bad else 0


# --------------------------------------------------------------------------- interleaved


def _seed_runner(package: str, rubric_json: dict, items: dict[str, list]) -> tuple[dict, callable]:
    """The seed sets as (Rubric, answer) pairs of one code's own models, and a function grading a list."""
    import importlib

    finalize = importlib.import_module(f"{package}.grading").finalize
    grader = importlib.import_module(f"{package}.graders.offline").OfflineGrader()
    Rubric = importlib.import_module(f"{package}.models").Rubric
    rubrics = {k: Rubric.model_validate(v) for k, v in rubric_json.items()}
    sets = {name: [(rubrics[k], a) for _, k, a in triples] for name, triples in items.items()}

    def grade(pairs: list) -> list:
        return [finalize(r, a, grader.judge(r, a), grader="offline") for r, a in pairs]
    return sets, grade


def interleave(rev: str, data_dir: Path, rounds: int) -> int:
    """REV's code (renamed to the package `mlgrade_rev`) and this tree's in ONE process, their warm
    passes over the seed sets alternating, the best of each kept: a load that comes and goes hits
    both alike, where two processes timed one after the other can differ by 1.5x either way."""
    rubric_json, sets = load_items(data_dir, ("seed-dev.jsonl", "seed-dev2.jsonl"))
    if not sets:
        print(f"no seed sets found in {data_dir}", file=sys.stderr)
        return 2
    with rev_checkout(rev) as work:
        if work is None:
            return 2
        (work / "src" / "mlgrade").rename(work / "src" / "mlgrade_rev")  # its imports are relative
        sys.path.insert(0, str(work / "src"))
        codes = {rev: _seed_runner("mlgrade_rev", rubric_json, sets), "this tree": _seed_runner("mlgrade", rubric_json, sets)}
        dumps = {code: [g.model_dump(mode="json", exclude={"latency_ms"}) for pairs in runs.values() for g in grade(pairs)]
                 for code, (runs, grade) in codes.items()}
        best = {(code, name): float("inf") for code in codes for name in sets}
        for _ in range(rounds):
            for code, (runs, grade) in codes.items():
                for name, pairs in runs.items():
                    cpu = time.process_time()
                    grade(pairs)
                    best[(code, name)] = min(best[(code, name)], time.process_time() - cpu)
    print(f"{'data set':<18} {'answers':>7}  {rev + ' /s':>12}  {'this tree /s':>12}  CPU ratio")
    for name, triples in sets.items():
        n, old, new = len(triples), best[(rev, name)], best[("this tree", name)]
        print(f"{name:<18} {n:>7}  {n / old:>12,.0f}  {n / new:>12,.0f}  {old / new:>8.2f}x")
    same = dumps[rev] == dumps["this tree"]
    print(f"(one process, {rounds} alternating warm passes of each code, best kept; CPU time; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}); grades {'identical' if same else 'DIFFER'}")
    return 0 if same else 1


# --------------------------------------------------------------------------- speed


def timed(fn, repeat: int) -> tuple[float, float, float]:
    """(first wall, best wall, best CPU) of `repeat` calls."""
    walls, cpus = [], []
    for _ in range(max(1, repeat)):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return walls[0], min(walls), min(cpus)


def speed(data_dir: Path, repeat: int) -> None:
    t0 = time.perf_counter()
    from mlgrade.evaluation.evaluate import tfidf_cosines
    from mlgrade.grading import finalize
    from mlgrade.graders.offline import OfflineGrader
    from mlgrade.models import Rubric

    rubric_json, sets = load_items(data_dir, ("seed-dev.jsonl", "seed-dev2.jsonl", "mohler-dev.csv"))
    rubrics = {k: Rubric.model_validate(v) for k, v in rubric_json.items()}
    grader = OfflineGrader()
    for r in rubrics.values():
        grader.judge(r, r.model_answer)  # compiles the rubric
    setup = time.perf_counter() - t0
    workloads = {"seed-length (seed-dev + seed-dev2, our 25 rubrics)":
                 [(rubrics[k], a) for s in ("seed-dev.jsonl", "seed-dev2.jsonl") for _, k, a in sets.get(s, [])],
                 "mohler-dev (short answers, derived rubrics)":
                 [(rubrics[k], a) for _, k, a in sets.get("mohler-dev.csv", [])]}
    print(f"data: {data_dir}; setup (import, load + derive + compile rubrics): {setup * 1000:.0f} ms")
    print(f"{'workload':<52} {'answers':>7} {'chars/answer':>12} {'cold /s':>8} {'warm /s':>8} "
          f"{'CPU /s':>8} {'tf-idf /s':>9} {'time vs tf-idf':>14}")
    for label, items in workloads.items():
        if not items:
            continue

        def grade_all(items=items) -> None:
            for rubric, answer in items:
                finalize(rubric, answer, grader.judge(rubric, answer), grader="offline")

        first, best, cpu = timed(grade_all, repeat)
        pairs = [(a, r.model_answer) for r, a in items]
        # best of several, like the grader: one short burst is at the mercy of other processes
        _, tfidf, _ = timed(lambda pairs=pairs: tfidf_cosines(pairs), max(3, repeat * 3))
        n = len(items)
        chars = sum(len(a) for _, a in items) / n
        print(f"{label:<52} {n:>7} {chars:>12,.0f} {n / first:>8,.0f} {n / best:>8,.0f} {n / cpu:>8,.0f} "
              f"{n / tfidf:>9,.0f} {best / tfidf:>13.1f}x")
    print(f"(cold: first pass; warm: best of {repeat} wall; CPU: best of {repeat} user+sys; goal >= 1,000 answers/s warm)")
    q05 = next((r for r in rubrics.values() if r.id == "q05"), None)
    if q05 is not None:
        print("pathological 20,000-character answers (issue 27 H3; goal < 0.2 s each), q05, best of 3:")
        print(f"  {'answer':<44} {'CPU ms':>8} {'wall ms':>8}  CPU vs prose")
        base = "Feature scaling matters for k-NN because distances mix units. " * 320
        cases = {"20,000 chars of ordinary prose (reference)": base[:20_000], **PATHOLOGICAL,
                 "one clause of q05's own cues, referred back": own_cues_clause(q05)}
        ref = None
        for label, answer in cases.items():
            _, wall, cpu = timed(lambda answer=answer: finalize(q05, answer, grader.judge(q05, answer), grader="offline"), 3)
            ref = ref or cpu
            print(f"  {label:<44} {cpu * 1000:>8.1f} {wall * 1000:>8.1f}  {cpu / ref:.2f}x")


def own_cues_clause(rubric) -> str:
    """20,000 characters of one clause: the rubric's misconception and key-point cues, asserted and
    referred back to ("the X works, it ..."), glued with commas (every claim found in a clause once
    re-scanned the whole clause: 1.5 s for q12 at d170659)."""
    cues = [c for m in rubric.misconceptions for c in m.cues] + [c for kp in rubric.key_points for c in kp.cues]
    parts = [f"the {c.split()[0]} works, it {' '.join(c.split()[1:])}" if i % 3 else c for i, c in enumerate(cues)]
    return ", ".join(parts * 40)[:20_000]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--repeat", type=int, default=3, help="grading passes; the best is reported")
    ap.add_argument("--check-against", metavar="REV", nargs="?", const="530fcaa", default=None,
                    help="compare every grade with the code of git revision REV (default 530fcaa)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating rounds of both codes (--check-against; x5 passes with --interleave); each best is reported")
    ap.add_argument("--interleave", metavar="REV", default=None,
                    help="time REV's code and this tree's in one process, passes alternating (seed sets)")
    ap.add_argument("--worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker, repeat=args.repeat)
        return
    if args.interleave:
        sys.exit(interleave(args.interleave, Path(args.data_dir), max(1, args.rounds * 5)))
    if args.check_against:
        sys.exit(check_against(args.check_against, Path(args.data_dir), args.repeat, max(1, args.rounds)))
    speed(Path(args.data_dir), args.repeat)


if __name__ == "__main__":
    main()
