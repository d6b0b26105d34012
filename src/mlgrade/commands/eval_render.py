"""What `mlgrade eval` prints: the agreement tables for a human-graded CSV and for an expert set."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import console

if TYPE_CHECKING:
    from ..evaluation.evaluate import EvalResult
    from ..evaluation.expert import ExpertResult

HUMAN_HUMAN_NOTE = {"mohler": "published human–human agreement on the Mohler data: Pearson ≈ 0.59"}


def render_expert(result: ExpertResult, dataset: Path) -> None:
    from rich.table import Table

    con = console()
    m = result.metrics
    title = f"{dataset.name}: {result.graded}/{result.rows} answers graded, {result.grader}, {result.seconds:.1f}s"
    if result.calibration:
        title += f", calibrated by {result.calibration}"
    if not m.get("n"):
        con.print(f"{title}: nothing graded")
    else:
        rec, inj = m["misconception_recall"], m["injection"]
        summary = Table(title=title, header_style="bold")
        summary.add_column("measure")
        summary.add_column("value", justify="right")
        for name, value in (
            ("band accuracy", f"{m['band_accuracy']:.0%}"),
            ("within one band", f"{m['within_one_band']:.0%}"),
            ("Spearman", fmt_stat(m["spearman"])), ("Pearson", fmt_stat(m["pearson"])),
            ("MAE (0-100)", f"{m['mae']:.1f}"),
            ("misconception recall", "—" if rec["recall"] is None else f"{rec['recall']:.0%} ({rec['flagged']}/{rec['n']})"),
            ("injection answers: max score", "—" if inj["max_score"] is None
             else f"{inj['max_score']:g} ({inj['n']} answers, {inj['above_ceiling']} above {inj['ceiling']:g})"),
        ):
            summary.add_row(name, value)
        con.print(summary)
        con.print(confusion_table(m["confusion"], "bands: rows expected, columns given", "expected"))
        kinds = Table(title="mean score by kind", header_style="bold")
        for c in ("kind", "n", "grader", "experts", "min", "max"):
            kinds.add_column(c, justify="right" if c != "kind" else "left")
        for kind, k in m["by_kind"].items():
            kinds.add_row(kind, str(k["n"]), f"{k['mean_score']:.1f}", f"{k['mean_expert']:.1f}",
                          f"{k['min_score']:g}", f"{k['max_score']:g}")
        con.print(kinds)
        ff = m["false_flags"]
        if ff["n"]:
            con.print(f"[dim]misconceptions flagged on {ff['flagged']} of {ff['n']} answers the experts did not flag.[/]")
        from .eval_breakdown import render_breakdowns

        render_breakdowns(result.by)
    if result.errors:
        con.print(f"[bold red]{len(result.errors)} answer(s) not graded[/] (left out of every statistic):")
        for e in result.errors[:20]:
            con.print(f"  line {e['line']}: {e['outcome']}: {e['error']}")


def confusion_table(confusion: dict[str, Any], title: str, rows_are: str) -> Any:
    """The band confusion matrix of expert or review metrics as a table."""
    from rich.table import Table

    conf = Table(title=title, header_style="bold")
    conf.add_column(rows_are)
    labels = confusion["labels"]
    for label in labels:
        conf.add_column(label, justify="right")
    for label, counts in zip(labels, confusion["matrix"]):
        conf.add_row(label, *(str(c) for c in counts))
    return conf


def fmt_stat(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def fit_phrases(parts: list[str], width: int) -> str:
    """Join phrases with ` · `, breaking lines only between phrases, never inside one."""
    from rich.text import Text

    lines: list[str] = []
    for part in parts:
        if lines and Text.from_markup(lines[-1] + " · " + part).cell_len <= width:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return "\n".join(lines)


def render_eval(result: EvalResult, dataset: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    con = console()
    labelled = result.scale is None
    cols = ["accuracy", "macro_f1", "pearson", "spearman"] if labelled else ["pearson", "spearman", "qwk", "rmse"]
    # a line of its own rather than the table's title: a title wraps at the table's width, mid-phrase
    parts = [f"[bold]{escape(dataset.name)}[/]", f"{result.graded:,}/{result.rows:,} rows graded",
             f"{result.rubrics} derived rubrics", f"{result.seconds:.1f}s"]
    con.print(fit_phrases(parts, con.width))
    table = Table(header_style="bold")
    table.add_column("predictor")
    for c in cols:
        table.add_column(c, justify="right")
    for name, stats in result.metrics.items():
        label = f"{name} ({result.model})" if name == result.grader and result.model else name
        table.add_row(label, *(fmt_stat(stats.get(c)) for c in cols))
    con.print(table)
    if labelled:
        con.print(f"[dim]labels: 'correct' vs everything else; a score ≥ {result.label_threshold:g} predicts 'correct'.[/]")
    else:
        con.print(f"[dim]scores mapped linearly from 0-100 onto {result.scale[0]:g}-{result.scale[1]:g}"
                  + (f" (and by the calibration from {result.calibration} on the 'calibrated' line)"
                     if result.calibration else "") + "; kappa on the scale's integer points.[/]")
    for key, note in HUMAN_HUMAN_NOTE.items():
        if key in dataset.name.lower():
            con.print(f"[dim]{note}.[/]")
    if result.errors:
        con.print(f"[bold red]{len(result.errors)} row(s) not graded[/] (left out of every statistic):")
        for e in result.errors[:20]:
            con.print(f"  row {e['row']}: {e['outcome']}: {e['error']}")
        if len(result.errors) > 20:
            con.print(f"  … and {len(result.errors) - 20} more (see --json or --out)")
