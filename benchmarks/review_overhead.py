"""What review flags cost per answer, on seed-dev.jsonl (125 answers to the bank's questions).

The issue's budget: the offline second opinion behind `graders_disagree` costs "about a
millisecond". Measured in one run, per answer (best of --repeat passes):
  baseline  finalize() of a grader's assessment as the offline grader (evidence checks, score,
            and the cheap flags: injection patterns, near_boundary…) — what every grade pays;
  flags     injection_scan.find_injections + review.assess alone (part of the baseline);
  second    grading.second_opinion: the offline grader run beside another grader.
The ratio second/baseline is what grading with the LLM grader adds on top of finalize (an LLM
call itself takes hundreds of milliseconds to seconds).

    .venv/bin/python benchmarks/review_overhead.py [--data ../shared/data/seed-dev.jsonl] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "seed-dev.jsonl"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from mlgrade import injection_scan, review
    from mlgrade.graders.offline import OfflineGrader
    from mlgrade.grading import finalize, second_opinion
    from mlgrade.rubrics import load_rubrics

    bank = load_rubrics()
    rows = [json.loads(x) for x in Path(args.data).read_text(encoding="utf-8").splitlines() if x.strip()]
    grader = OfflineGrader()
    items = []
    for r in rows:
        rubric = bank.get(f"q{int(r['question_number']):02d}")
        items.append((rubric, r["answer"], grader.judge(rubric, r["answer"])))
    second_opinion(items[0][0], items[0][1])  # warm the shared offline grader

    def per_answer(fn) -> float:
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            for rubric, answer, assessment in items:
                fn(rubric, answer, assessment)
            best = min(best, time.perf_counter() - start)
        return 1000 * best / len(items)

    grades = [finalize(rb, a, x, grader="offline") for rb, a, x in items]
    baseline = per_answer(lambda rb, a, x: finalize(rb, a, x, grader="offline"))
    by_answer = {a: g for (_, a, _), g in zip(items, grades)}
    flags = per_answer(lambda rb, a, x: review.assess(by_answer[a], a, rubric=rb, injections=injection_scan.find_injections(a)))
    second = per_answer(lambda rb, a, x: second_opinion(rb, a))
    lengths = [len(a) for _, a, _ in items]
    print(f"data: {args.data} ({len(items)} answers, median {statistics.median(lengths):.0f} characters)")
    print(f"baseline finalize (evidence, score, flags): {baseline:.3f} ms/answer")
    print(f"  of which review flags:                   {flags:.3f} ms/answer ({flags / baseline:.0%} of the baseline)")
    print(f"second opinion (offline grader beside llm): {second:.3f} ms/answer ({second / baseline:.2f}x the baseline)")


if __name__ == "__main__":
    main()
