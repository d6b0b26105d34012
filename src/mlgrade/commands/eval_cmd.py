"""`mlgrade eval DATASET.csv`: agreement with human graders, next to two baselines."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ._common import (
    BaseUrlOpt,
    GraderOpt,
    JsonOpt,
    ModelOpt,
    RefreshOpt,
    concurrency_opt,
    console,
    limit_opt,
    option,
    out_opt,
    print_json,
    refresh_flag,
    settings_from,
)

if TYPE_CHECKING:
    from ..evaluation.evaluate import EvalResult

HUMAN_HUMAN_NOTE = {"mohler": "published human–human agreement on the Mohler data: Pearson ≈ 0.59"}


def eval_command(
    dataset: Annotated[Path, typer.Argument(help="CSV with question, reference_answer, student_answer and score or label.",
                                            metavar="DATASET", show_default=False)],
    scale: Annotated[Optional[str], option("--scale", metavar="LOW-HIGH", help="Range of the human `score` column, e.g. 0-5.")] = None,
    grader: GraderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    refresh: RefreshOpt = False,
    limit: Annotated[Optional[int], limit_opt("Only the first N rows (after --sample).")] = None,
    sample: Annotated[Optional[int], option("--sample", metavar="N", help="A random sample of N rows.")] = None,
    seed: Annotated[int, option("--seed", metavar="N", help="Seed for --sample.", show_default=True)] = 0,
    concurrency: Annotated[int, concurrency_opt("Answers graded at once (LLM grader).")] = 8,
    label_threshold: Annotated[float, option("--label-threshold", metavar="SCORE", show_default=True,
                                             help="Scores (0-100) at or above this count as 'correct' for labelled data.")] = 50.0,
    out: Annotated[Optional[Path], out_opt("Write per-row predictions (.csv, else JSON lines).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Grade every row of a human-graded CSV and report agreement with the humans: Pearson,
    Spearman, quadratic weighted kappa and RMSE for scores; accuracy and macro-F1 for labels.
    A mean (or majority) baseline and a TF-IDF cosine baseline are computed on the same rows.
    Rows the grader could not grade are listed and left out of the statistics.

    Examples:

      mlgrade eval ../shared/data/mohler-dev.csv --scale 0-5 --grader offline

      mlgrade eval ../shared/data/scientsbank-dev.csv --grader offline --json

      mlgrade eval data.csv --scale 0-5 --sample 100 --seed 1 --out predictions.csv
    """
    from ..errors import UsageError
    from ..evaluation.evaluate import aevaluate, parse_scale, read_dataset, select_rows, write_predictions

    if concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    settings = settings_from(grader=grader, model=model, base_url=base_url, cache_capabilities=refresh_flag(refresh))
    scale_t = parse_scale(scale) if scale is not None else None
    rows = select_rows(read_dataset(dataset, scale=scale_t), limit=limit, sample=sample, seed=seed)
    if rows[0].label is None and scale_t is None:
        raise UsageError("the dataset has a 'score' column: give its range with --scale, e.g. --scale 0-5")
    notice = settings.offline_notice
    if notice and not json_out:
        console(stderr=True).print(f"[dim]{notice}[/]")

    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("grading", total=len(rows))
        result = asyncio.run(aevaluate(rows, settings=settings, scale=scale_t, label_threshold=label_threshold,
                                       concurrency=concurrency, dataset=str(dataset),
                                       progress=lambda done, total: bar.update(task, completed=done)))
    if out is not None:
        try:
            write_predictions(result, out)
        except OSError as exc:
            raise UsageError(f"{out}: cannot write ({exc.strerror})") from None
    if json_out:
        print_json(result.to_dict())
    else:
        _render(result, dataset)
    if result.errors:
        raise typer.Exit(1)


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def _fit(parts: list[str], width: int) -> str:
    """Join phrases with ` · `, breaking lines only between phrases, never inside one."""
    from rich.text import Text

    lines: list[str] = []
    for part in parts:
        if lines and Text.from_markup(lines[-1] + " · " + part).cell_len <= width:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return "\n".join(lines)


def _render(result: EvalResult, dataset: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    con = console()
    labelled = result.scale is None
    cols = ["accuracy", "macro_f1", "pearson", "spearman"] if labelled else ["pearson", "spearman", "qwk", "rmse"]
    # a line of its own rather than the table's title: a title wraps at the table's width, mid-phrase
    parts = [f"[bold]{escape(dataset.name)}[/]", f"{result.graded:,}/{result.rows:,} rows graded",
             f"{result.rubrics} derived rubrics", f"{result.seconds:.1f}s"]
    con.print(_fit(parts, con.width))
    table = Table(header_style="bold")
    table.add_column("predictor")
    for c in cols:
        table.add_column(c, justify="right")
    for name, stats in result.metrics.items():
        label = f"{name} ({result.model})" if name == result.grader and result.model else name
        table.add_row(label, *(_fmt(stats.get(c)) for c in cols))
    con.print(table)
    if labelled:
        con.print(f"[dim]labels: 'correct' vs everything else; a score ≥ {result.label_threshold:g} predicts 'correct'.[/]")
    else:
        con.print(f"[dim]scores mapped linearly from 0-100 onto {result.scale[0]:g}-{result.scale[1]:g}; "
                  "kappa on the scale's integer points.[/]")
    for key, note in HUMAN_HUMAN_NOTE.items():
        if key in dataset.name.lower():
            con.print(f"[dim]{note}.[/]")
    if result.errors:
        con.print(f"[bold red]{len(result.errors)} row(s) not graded[/] (left out of every statistic):")
        for e in result.errors[:20]:
            con.print(f"  row {e['row']}: {e['outcome']}: {e['error']}")
        if len(result.errors) > 20:
            con.print(f"  … and {len(result.errors) - 20} more (see --json or --out)")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
