"""`mlgrade eval --builtin`: show the plan, ask, run evaluation.benchmark, show the figures side
by side with the verdict. (`eval_cmd` hands over here; the work is in the library.)"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer

from ._common import console, print_json

if TYPE_CHECKING:
    from ..config import Settings
    from ..evaluation.benchmark import BuiltinResult, Plan


def refuse_dataset_options(dataset: Any, given: dict[str, Any]) -> None:
    """--builtin has its own answers and a fixed sample: a DATASET or a dataset option is a mistake."""
    from ..errors import UsageError

    if dataset is not None:
        raise UsageError(f"--builtin measures on the built-in answers: drop {dataset}")
    extra = [name for name, value in given.items() if value]
    if extra:
        raise UsageError(f"{extra[0]} does not apply to --builtin (its sample is fixed: --sample N)")


def parse_variants(values: list[str] | None) -> list[str] | None:
    """`--compare a --compare b` or `--compare a,b`."""
    if not values:
        return None
    return [v.strip().lower() for item in values for v in item.split(",") if v.strip()]


def _plan_line(settings: Settings, plan: Plan, variants: list[str]) -> str:
    cost = "cost unknown for this model (local or unpriced: nothing billed by mlgrade's price table)" \
        if plan.cost_usd is None else f"about ${plan.cost_usd:.2f}"
    minutes = plan.seconds / 60
    when = f"about {minutes:.0f} min" if minutes >= 1 else f"about {plan.seconds:.0f} s"
    judges = f", judge {' and '.join(variants)}" if len(variants) > 1 else ""
    return (f"{plan.requests} requests to {settings.model}{judges} ({plan.answers} answers; "
            f"~{plan.input_tokens:,} tokens in, ~{plan.output_tokens:,} out): {cost}, {when}")


def confirm_spend(settings: Settings, plan: Plan, variants: list[str], *, yes: bool) -> None:
    """Say what the run will spend and ask; without a terminal --yes is required."""
    from ..errors import UsageError

    if plan.requests == 0:
        return
    err = console(stderr=True)
    err.print(_plan_line(settings, plan, variants))
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("eval --builtin sends requests to the model: add --yes to run it without a terminal")
    if not typer.confirm("Run it?", default=True, err=True):
        err.print("nothing sent")
        raise typer.Exit(0)


def run(settings: Settings, *, sample: int | None, variants: list[str] | None, yes: bool, concurrency: int,
        json_out: bool) -> None:
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..errors import UsageError
    from ..evaluation.benchmark import arun_builtin, builtin_rows, check_variants, plan, stratified_sample
    from ..rubrics import load_rubrics

    if concurrency < 1:
        raise UsageError("--concurrency must be at least 1")

    bank = load_rubrics(settings.rubrics_dir)
    chosen = check_variants(settings, variants)
    rows = builtin_rows(bank)
    if sample is not None:
        rows = stratified_sample(rows, sample)
    spend = plan(settings, rows, bank, chosen, concurrency)
    confirm_spend(settings, spend, chosen, yes=yes)
    if settings.offline_notice and not json_out:
        console(stderr=True).print(f"[dim]{settings.offline_notice}[/]")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console(stderr=True), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(f"grading, {label}", total=total)
            bar.update(tasks[label], completed=done)

        result = asyncio.run(arun_builtin(settings, sample=sample, variants=chosen, bank=bank,
                                          concurrency=concurrency, progress=progress))
    result.plan = spend if spend.requests else None
    if json_out:
        print_json(result.to_dict())
    else:
        render(result)
    if result.errors:
        raise typer.Exit(1)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.0%}"


def _num(v: float | None, fmt: str = ".3f") -> str:
    return "—" if v is None else format(v, fmt)


def render(result: BuiltinResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    con = console()
    runs = result.runs
    summaries = [r.summary() for r in runs]
    from ..evaluation.benchmark import BUILTIN_SETS

    total = result.available
    what = f"a fixed sample of {result.answers} of the {total}" if result.sample else f"all {total}"
    con.print(f"[bold]{what} expert-graded answers shipped with mlgrade[/] ({', '.join(BUILTIN_SETS)}: written and "
              "graded for this project, the second set by two graders; also its development set)")
    table = Table(header_style="bold")
    table.add_column("measure")
    for s in summaries:
        table.add_column(escape(s["label"]), justify="right")
    rows: list[tuple[str, list[str]]] = [
        ("band accuracy", [_pct(s["band_accuracy_all"]) for s in summaries]),
        ("  95 % interval", [f"{s['band_accuracy_ci'][0]:.0%}–{s['band_accuracy_ci'][1]:.0%}" if s["band_accuracy_ci"]
                              else "—" for s in summaries]),
        ("within one band", [_pct(s["within_one_band"]) for s in summaries]),
        ("Spearman", [_num(s["spearman"]) for s in summaries]),
        ("MAE (0-100)", [_num(s["mae"], ".1f") for s in summaries]),
        ("misconception recall", [_pct(s["misconception_recall"]) for s in summaries]),
        ("highest injection score", [_num(s["injection_max_score"], "g") for s in summaries]),
    ]
    if any(s["not_graded"] for s in summaries):
        rows.append(("answers not graded", [str(s["not_graded"]) for s in summaries]))
    for name, cells in rows:
        table.add_row(name, *cells)
    con.print(table)
    if any(s["not_graded"] for s in summaries):
        con.print("[dim]band accuracy counts an answer that was not graded as a miss; the other measures cover the "
                  "graded answers.[/]")
    for line in result.verdicts:
        con.print(f"[bold]{escape(line)}[/]")
    con.print("[dim]remembered for `mlgrade doctor`, `grade`, `practice` and `batch` (per model, endpoint, judge "
              "variant, prompt and rubrics).[/]")
