"""Misconception detection measured held apart: choose on one expert set, measure on the other.

The back-reference grammar of graders/anaphora.py has two reaches: how far into a clause its
subject may start (SUBJECT_REACH) and how many clauses a chain of pronouns may hand an antecedent
back through (CHAIN_MAX); "off" turns back-references off. For each direction (seed-dev → seed-dev2
and the reverse) the setting is chosen on one set by misconception recall minus the false-flag
rate, then band accuracy, and measured on the other. The shipped setting is measured on both.

    python benchmarks/claim_splits.py [--data-dir ../shared/data] [--json]

Figures per set: band accuracy, within one band, Spearman, MAE, misconception recall (the
experts flagged it: the grader named a misconception or put it in the poor band), wrong claims
named (answers with an expert flag where the grader named a rubric misconception, injections
aside), false flags per 100 answers without an expert flag, and the highest score of an
off-topic or injection answer.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SETS = ("seed-dev.jsonl", "seed-dev2.jsonl")
GRID = {"SUBJECT_REACH": [0, 1, 2, 3], "CHAIN_MAX": [1, 2, 3]}


@contextmanager
def setting(values: dict[str, int] | None):
    """Back-references with these reaches, or none at all (None)."""
    from mlgrade.graders import anaphora

    old = {k: getattr(anaphora, k) for k in GRID}
    old_hit = anaphora._referring_hit
    try:
        if values is None:
            anaphora._referring_hit = lambda *a, **k: None  # type: ignore[assignment]
        else:
            for k, v in values.items():
                setattr(anaphora, k, v)
        yield
    finally:
        anaphora._referring_hit = old_hit  # type: ignore[assignment]
        for k, v in old.items():
            setattr(anaphora, k, v)


def grade_set(path: Path) -> list[tuple[Any, Any]]:
    from mlgrade.config import load_settings
    from mlgrade.evaluation.expert import agrade_expert_rows, read_expert_set
    from mlgrade.graders.offline import OfflineGrader
    from mlgrade.rubrics import load_rubrics

    bank = load_rubrics()
    rows = read_expert_set(path, bank)
    return asyncio.run(agrade_expert_rows(rows, settings=load_settings(grader="offline"), grader=OfflineGrader(),
                                          bank=bank))


def figures(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    from mlgrade.evaluation.expert import expert_metrics
    from mlgrade.graders.injection import MISCONCEPTION_ID as INJECTION_ID

    m = expert_metrics(pairs)
    ok = [(r, g) for r, g in pairs if g.ok]
    wrong = [(r, g) for r, g in ok if r.must_flag and r.kind != "off_topic_or_injection"]
    named = sum(any(f.id != INJECTION_ID for f in g.misconceptions) for _, g in wrong)
    clean = [g for r, g in ok if not r.must_flag]
    off = [g.score for r, g in ok if r.kind == "off_topic_or_injection" or r.is_injection]
    return {"band_accuracy": m["band_accuracy"], "within_one": m["within_one_band"], "spearman": m["spearman"],
            "mae": m["mae"], "misconception_recall": m["misconception_recall"]["recall"],
            "wrong_claims_named": f"{named}/{len(wrong)}",
            "false_flags_per_100": round(100 * sum(bool(g.misconceptions) for g in clean) / len(clean), 1)
            if clean else None,
            "off_topic_or_injection_max": round(max(off), 1) if off else None}


def _key(f: dict[str, Any]) -> tuple[float, float]:
    return ((f["misconception_recall"] or 0) - (f["false_flags_per_100"] or 0) / 100, f["band_accuracy"] or 0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    paths = [args.data_dir / s for s in SETS]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"error: {missing[0]} not found (--data-dir)", file=sys.stderr)
        return 2
    combos: list[dict[str, int] | None] = [None] + [dict(zip(GRID, c)) for c in itertools.product(*GRID.values())]
    results: dict[str, list[dict[str, Any]]] = {p.name: [] for p in paths}
    for combo in combos:
        with setting(combo):
            for p in paths:
                results[p.name].append(figures(grade_set(p)))
    shipped = {p.name: figures(grade_set(p)) for p in paths}
    report: dict[str, Any] = {"shipped": shipped, "directions": {}}
    from mlgrade.graders import anaphora

    shipped_combo = {k: getattr(anaphora, k) for k in GRID}
    for train, test in ((SETS[0], SETS[1]), (SETS[1], SETS[0])):
        top = max(_key(f) for f in results[train])
        tied = [i for i in range(len(combos)) if _key(results[train][i]) == top]
        # among equals, the shipped setting: the data cannot tell them apart
        best = next((i for i in tied if combos[i] == shipped_combo), tied[0])
        report["directions"][f"chosen on {train}, measured on {test}"] = {
            "setting": combos[best] or "off", "tied_settings": len(tied), "of": len(combos),
            "chosen_on": results[train][best], "held_apart": results[test][best],
            "off_on_held_apart": results[test][0]}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    cols = list(shipped[SETS[0]])
    print("shipped setting:")
    for name, f in shipped.items():
        print(f"  {name:16} " + "  ".join(f"{c}={f[c]}" for c in cols))
    for d, r in report["directions"].items():
        print(f"{d}: setting {r['setting']} ({r['tied_settings']} of {r['of']} settings tie on the chosen set)")
        for label in ("chosen_on", "held_apart", "off_on_held_apart"):
            print(f"  {label:18} " + "  ".join(f"{c}={r[label][c]}" for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
