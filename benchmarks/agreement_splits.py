"""Agreement on held-apart data: every figure here is measured on data the choice was not made on.

seed-dev.jsonl (expert-graded answers to the bank's 25 questions) is split by question: odd
question numbers vs even. For each direction the score-scale constants of `scoring.py` are chosen
by grid search on one half (band accuracy, then Spearman) and measured on the other; the shipped
constants are measured on both halves too.

mohler-dev.csv is split by assignment (1, 5, 9 vs 3, 7, 11). The offline grader's Pearson is
reported per half; an isotonic calibration fitted on one half is measured on the other (RMSE,
QWK), next to a constant predictor fitted on the same half (its mean) and the measured half's own
mean (a constant that has seen the answers).

    python benchmarks/agreement_splits.py [--data-dir ../shared/data] [--json]
    python benchmarks/agreement_splits.py --no-tune      # shipped constants only (fast)
    python benchmarks/agreement_splits.py --tune-grader  # also the offline grader's overlap thresholds

--tune-grader chooses the offline grader's word-overlap thresholds the same way: those for points
with cues (the bank's rubrics) on seed-dev question halves, those for points without cues (rubrics
derived from a reference answer) on Mohler assignment halves (by Pearson), each measured on the
other half.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import json
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MOHLER_HALVES = {"A": {"1", "5", "9"}, "B": {"3", "7", "11"}}
GRID = {
    "CORE_SHARE": [25.0, 30.0, 35.0, 40.0],
    "CORE_MODE": ["all", "best", "best-only"],
    "ESSENTIAL_CAP": [45.0, 52.0, 59.0],
}


@contextmanager
def constants(module: Any, values: dict[str, float]):
    old = {k: getattr(module, k) for k in values}
    try:
        for k, v in values.items():
            setattr(module, k, v)
        yield
    finally:
        for k, v in old.items():
            setattr(module, k, v)


def seed_pairs(path: Path) -> list[tuple[Any, Any]]:
    from mlgrade.config import load_settings
    from mlgrade.evaluation.expert import agrade_expert_rows, read_expert_set
    from mlgrade.graders.offline import OfflineGrader
    from mlgrade.rubrics import load_rubrics

    bank = load_rubrics()
    rows = read_expert_set(path, bank)
    settings = load_settings(grader="offline")
    return asyncio.run(agrade_expert_rows(rows, settings=settings, grader=OfflineGrader(), bank=bank)), bank


def rescore(pairs, bank) -> list[tuple[Any, Any]]:
    """The same judgments, scored by the scoring module's current constants."""
    from mlgrade.scoring import code_passed, compute_score

    out = []
    for r, g in pairs:
        if not g.ok:
            out.append((r, g))
            continue
        b = compute_score(bank.get(r.question_id), g.judgments, g.misconceptions, code_passed=code_passed(g.code_tests))
        out.append((r, g.model_copy(update={"score": b.score, "band": b.band})))
    return out


def summary(m: dict[str, Any]) -> dict[str, Any]:
    k = m["by_kind"]
    return {"n": m["n"], "band_accuracy": m["band_accuracy"], "spearman": m["spearman"], "mae": m["mae"],
            "misconception_mean": k.get("misconception", {}).get("mean_score"),
            "excellent_min": k.get("excellent", {}).get("min_score"),
            "injection_max": m["injection"]["max_score"],
            "misconception_recall": m["misconception_recall"]["recall"]}


def seed_report(path: Path, tune: bool) -> dict[str, Any]:
    import mlgrade.scoring as scoring
    from mlgrade.evaluation.expert import expert_metrics

    pairs, bank = seed_pairs(path)
    halves = {"odd": [p for p in pairs if int(p[0].question_id[1:]) % 2],
              "even": [p for p in pairs if not int(p[0].question_id[1:]) % 2]}
    shipped = {k: getattr(scoring, k) for k in GRID}
    report: dict[str, Any] = {"shipped_constants": shipped,
                              "shipped": {name: summary(expert_metrics(rescore(h, bank)))
                                          for name, h in [("all", pairs), *halves.items()]}}
    if tune:
        tuned = {}
        for train, test in (("odd", "even"), ("even", "odd")):
            best, best_key = None, None
            for combo in itertools.product(*GRID.values()):
                values = dict(zip(GRID, combo))
                with constants(scoring, values):
                    m = expert_metrics(rescore(halves[train], bank))
                key = (m["band_accuracy"], m["spearman"] or 0)
                if best_key is None or key > best_key:
                    best, best_key = values, key
            with constants(scoring, best):
                tuned[f"tuned on {train}, measured on {test}"] = {
                    "constants": best, "train": summary(expert_metrics(rescore(halves[train], bank))),
                    "test": summary(expert_metrics(rescore(halves[test], bank)))}
        report["held_out_tuning"] = tuned
    return report


def mohler_report(path: Path) -> dict[str, Any]:
    from mlgrade.config import load_settings
    from mlgrade.evaluation import metrics
    from mlgrade.evaluation.calibration import fit_isotonic
    from mlgrade.evaluation.evaluate import aevaluate, read_dataset

    rows = read_dataset(path, scale=(0, 5))
    with path.open(encoding="utf-8", newline="") as fh:
        assignment = {i + 2: rec["assignment"] for i, rec in enumerate(csv.DictReader(fh))}
    settings = load_settings(grader="offline")
    started = time.perf_counter()
    res = asyncio.run(aevaluate(rows, settings=settings, grader_kind="offline", scale=(0, 5)))
    seconds = time.perf_counter() - started
    preds = [p for p in res.predictions if p["outcome"] == "graded"]
    half = {name: [p for p in preds if assignment[p["row"]] in keep] for name, keep in MOHLER_HALVES.items()}
    out: dict[str, Any] = {"all": {"pearson": res.metrics["offline"]["pearson"], "n": len(preds),
                                   "rmse_linear": res.metrics["offline"]["rmse"], "seconds": round(seconds, 2)}}
    for fit_on, measure_on in (("A", "B"), ("B", "A")):
        f, m = half[fit_on], half[measure_on]
        cal = fit_isotonic([p["score"] for p in f], [p["human"] for p in f])
        human = [p["human"] for p in m]
        raw = [p["score"] for p in m]
        calibrated = [cal(s) for s in raw]
        const_fit = statistics.fmean(p["human"] for p in f)
        own_mean = statistics.fmean(human)
        out[f"fit on {fit_on}, measured on {measure_on}"] = {
            "n": len(m), "pearson_raw": metrics.pearson(raw, human),
            "pearson_calibrated": metrics.pearson(calibrated, human),
            "spearman": metrics.spearman(raw, human),
            "rmse_calibrated": metrics.rmse(calibrated, human),
            "qwk_calibrated": metrics.quadratic_weighted_kappa([metrics.to_scale(x, 0, 5) for x in human],
                                                               [metrics.to_scale(x, 0, 5) for x in calibrated],
                                                               min_rating=0, max_rating=5),
            "rmse_constant_fitted_half": metrics.rmse([const_fit] * len(m), human),
            "rmse_constant_own_mean": metrics.rmse([own_mean] * len(m), human),
        }
    return out


GRADER_GRID = {
    "cues": {"COVERED_OVERLAP": [0.5, 0.6, 0.7], "PARTIAL_OVERLAP": [0.2, 0.3, 0.4]},
    "no_cues": {"COVERED_OVERLAP_NO_CUES": [0.4, 0.5, 0.6, 0.7], "PARTIAL_OVERLAP_NO_CUES": [0.1, 0.2, 0.3]},
}


def grader_report(data: Path) -> dict[str, Any]:
    import mlgrade.graders.offline as offline
    from mlgrade.evaluation import metrics
    from mlgrade.evaluation.expert import expert_metrics

    out: dict[str, Any] = {"shipped": {k: getattr(offline, k) for g in GRADER_GRID.values() for k in g}}
    # points with cues: seed-dev halves
    seed: dict[tuple, dict[str, Any]] = {}
    for combo in itertools.product(*GRADER_GRID["cues"].values()):
        values = dict(zip(GRADER_GRID["cues"], combo))
        with constants(offline, values):
            pairs, _ = seed_pairs(data / "seed-dev.jsonl")
        seed[combo] = {h: expert_metrics([p for p in pairs if int(p[0].question_id[1:]) % 2 == (h == "odd")])
                       for h in ("odd", "even")}
    for train, test in (("odd", "even"), ("even", "odd")):
        best = max(seed, key=lambda c: (seed[c][train]["band_accuracy"], seed[c][train]["spearman"] or 0))
        out[f"cues: tuned on {train}, measured on {test}"] = {
            "values": dict(zip(GRADER_GRID["cues"], best)),
            "train": summary(seed[best][train]), "test": summary(seed[best][test])}
    # points without cues: Mohler halves
    moh: dict[tuple, dict[str, Any]] = {}
    for combo in itertools.product(*GRADER_GRID["no_cues"].values()):
        values = dict(zip(GRADER_GRID["no_cues"], combo))
        with constants(offline, values):
            moh[combo] = mohler_report(data / "mohler-dev.csv")
    for train, test in (("A", "B"), ("B", "A")):
        key_train, key_test = f"fit on {test}, measured on {train}", f"fit on {train}, measured on {test}"
        best = max(moh, key=lambda c: moh[c][key_train]["pearson_raw"] or 0)
        out[f"no cues: tuned on Mohler {train}, measured on {test}"] = {
            "values": dict(zip(GRADER_GRID["no_cues"], best)),
            "train_pearson": moh[best][key_train]["pearson_raw"], "test_pearson": moh[best][key_test]["pearson_raw"],
            "test_rmse_calibrated": moh[best][key_test]["rmse_calibrated"]}
    del metrics
    return out


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--no-tune", action="store_true", help="skip the grid search on seed-dev")
    ap.add_argument("--tune-grader", action="store_true", help="also choose the grader's overlap thresholds")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    data = Path(args.data_dir)
    report = {"seed-dev": seed_report(data / "seed-dev.jsonl", tune=not args.no_tune),
              "mohler-dev": mohler_report(data / "mohler-dev.csv")}
    if args.tune_grader:
        report["grader"] = grader_report(data)
    if args.json:
        json.dump(report, sys.stdout, indent=1, default=str)
        print()
        return
    s = report["seed-dev"]
    print("seed-dev, shipped constants", s["shipped_constants"])
    for name, m in s["shipped"].items():
        print(f"  {name:5s}", "  ".join(f"{k}={_fmt(v)}" for k, v in m.items()))
    for name, t in s.get("held_out_tuning", {}).items():
        print(f"seed-dev, {name}: {t['constants']}")
        for part in ("train", "test"):
            print(f"  {part:5s}", "  ".join(f"{k}={_fmt(v)}" for k, v in t[part].items()))
    print("mohler-dev (offline grader, split by assignment)")
    for name, m in report["mohler-dev"].items():
        print(f"  {name}:", "  ".join(f"{k}={_fmt(v)}" for k, v in m.items()))
    for name, m in report.get("grader", {}).items():
        print(f"grader thresholds, {name}:", json.dumps(m, default=_fmt))


if __name__ == "__main__":
    main()
