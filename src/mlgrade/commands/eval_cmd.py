"""`mlgrade eval DATASET`: agreement with human graders (CSV, next to two baselines) or with
expert-graded answers to the bank's questions (JSON lines)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ._common import (
    BaseUrlOpt,
    GraderOpt,
    JsonOpt,
    JudgeOpt,
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
from .eval_render import confusion_table, fmt_stat, render_eval, render_expert


def eval_command(
    dataset: Annotated[Optional[Path], typer.Argument(
        help="CSV with question, reference_answer, student_answer and score or label; or an expert set (.jsonl) "
             "with question_number, answer, expert_score. Not with --builtin.",
        metavar="DATASET", show_default=False)] = None,
    builtin: Annotated[bool, option("--builtin", help="Measure the configured grader on the 275 expert-graded answers "
                                                      "that ship with mlgrade, next to the offline grader, and "
                                                      "remember the figure (shown by doctor, grade, practice, batch).")] = False,
    yes: Annotated[bool, option("--yes", "-y", help="With --builtin: run without asking (needed without a terminal).")] = False,
    compare: Annotated[Optional[list[str]], option(
        "--compare", metavar="VARIANT", help="With --builtin: measure these judge variants in one run, side by side "
                                             "(verdict-first, evidence-first; repeat or separate with commas).")] = None,
    judge: JudgeOpt = None,
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
    fit_calibration: Annotated[Optional[Path], option(
        "--fit-calibration", metavar="FILE", help="Learn a monotone (isotonic) map from the 0-100 score to this "
                                                  "dataset's scale and write it to this JSON file.")] = None,
    calibration: Annotated[Optional[Path], option(
        "--calibration", metavar="FILE", help="Apply a map written by --fit-calibration before computing agreement "
                                              "(fit it on other data).")] = None,
    reviews: Annotated[Optional[Path], option(
        "--reviews", metavar="FILE", help="Measure a batch results file (the DATASET argument) against a reviewer's "
                                          "decisions written by `mlgrade review`; nothing is graded again. Default "
                                          "for a results file: RESULTS.reviews.jsonl beside it.")] = None,
    by: Annotated[Optional[list[str]], option(
        "--by", metavar="FIELD", help="Expert sets: break the metrics down by this label field of the set (kind, "
                                      "persona, question_number…); repeat or separate with commas.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Grade every row of a human-graded CSV and report agreement with the humans: Pearson,
    Spearman, quadratic weighted kappa and RMSE for scores; accuracy and macro-F1 for labels.
    A mean (or majority) baseline and a TF-IDF cosine baseline are computed on the same rows.
    Rows the grader could not grade are listed and left out of the statistics.

    --builtin measures the configured grader on the expert-graded answers shipped with mlgrade
    (--sample N: a fixed stratified subset with a confidence interval), shows the offline
    grader's figures on the same answers and a verdict, and remembers the figure per model,
    endpoint and judge variant. It shows the requests, cost and time before sending anything.

    An expert set (.jsonl: question_number or question_id, answer, expert_score 0-100, expected_band,
    kind, must_flag) is graded against the bank's rubrics and reports band accuracy, the band
    confusion matrix, Spearman, MAE, mean score by kind and misconception recall; --by FIELD
    adds the same figures for each value of any field the set has.

    Examples:

      mlgrade eval --builtin --sample 25          # how far to trust the configured model

      mlgrade eval --builtin --yes --compare verdict-first,evidence-first

      mlgrade eval expert-graded.jsonl --grader offline --out predictions.jsonl

      mlgrade eval expert-graded.jsonl --grader offline --by persona --by question_number

      mlgrade eval human-scores.csv --scale 0-5 --grader offline

      mlgrade eval human-labels.csv --grader offline --json

      mlgrade eval data.csv --scale 0-5 --sample 100 --seed 1 --out predictions.csv

      mlgrade eval half-a.csv --scale 0-5 --grader offline --fit-calibration cal.json

      mlgrade eval half-b.csv --scale 0-5 --grader offline --calibration cal.json

      mlgrade eval results.jsonl --reviews results.reviews.jsonl   # mlgrade vs your review decisions
    """
    from ..errors import UsageError
    from ..evaluation.evaluate import (aevaluate, fit_result_calibration, parse_scale, read_dataset, select_rows,
                                       write_predictions)

    from ..evaluation.breakdown import parse_fields
    from ..evaluation.expert import is_expert_set

    fields = parse_fields(by)
    if fields and (builtin or (dataset is not None and not is_expert_set(dataset))):
        raise UsageError("--by applies to an expert set (.jsonl), whose answers carry label fields")
    if builtin:
        from . import eval_builtin

        eval_builtin.refuse_dataset_options(dataset, {"--scale": scale, "--limit": limit, "--out": out,
                                                      "--fit-calibration": fit_calibration, "--calibration": calibration,
                                                      "--reviews": reviews, "--seed": seed != 0})
        settings = settings_from(grader=grader, model=model, base_url=base_url, judge=judge,
                                 cache_capabilities=refresh_flag(refresh))
        return eval_builtin.run(settings, sample=sample, variants=eval_builtin.parse_variants(compare), yes=yes,
                                concurrency=concurrency, json_out=json_out)
    if dataset is None:
        raise UsageError("give a DATASET to measure on, or --builtin for the answers that ship with mlgrade")
    if yes or compare:
        raise UsageError(f"{'--yes' if yes else '--compare'} applies to --builtin only")
    if reviews is None:
        reviews = _default_reviews(dataset)
    if reviews is not None:
        if fields:
            raise UsageError("--by applies to an expert set, not to a results file measured against reviews")
        return _reviewed(dataset, reviews, json_out=json_out)
    if concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    settings = settings_from(grader=grader, model=model, base_url=base_url, judge=judge,
                             cache_capabilities=refresh_flag(refresh))
    from ..evaluation.calibration import load_calibration

    cal = load_calibration(calibration) if calibration is not None else None
    expert = is_expert_set(dataset)
    if out is not None:  # refused before any grading: a folder, an input, a file mlgrade did not write
        from ..evaluation.evaluate import is_predictions
        from ..evaluation.expert import is_expert_predictions
        from ..textfiles import check_output

        # only this kind's predictions may be replaced: the writer refuses the other kind too, but
        # only after all the grading
        check_output(out, inputs=(dataset, calibration), ours=is_expert_predictions if expert else is_predictions)
    if expert:
        if scale is not None:
            raise UsageError(f"--scale applies to CSV datasets with a 'score' column; {dataset.name} is an expert "
                             "set, scored 0-100 (drop --scale)")
        from ..evaluation.expert import EXPERT_SCALE

        if cal is not None:
            cal.check_target(EXPERT_SCALE, "expert", where=str(calibration))
            _warn_in_sample(cal, calibration, dataset)
        _expert(dataset, settings, limit=limit, sample=sample, seed=seed, concurrency=concurrency, out=out,
                json_out=json_out, by=fields, calibration=cal, calibration_path=calibration, fit_to=fit_calibration)
        return
    scale_t = parse_scale(scale) if scale is not None else None
    rows = select_rows(read_dataset(dataset, scale=scale_t), limit=limit, sample=sample, seed=seed)
    if rows[0].label is None and scale_t is None:
        raise UsageError("the dataset has a 'score' column: give its range with --scale, e.g. --scale 0-5")
    if cal is not None and rows[0].label is None:
        cal.check_target(scale_t, "human-scores", where=str(calibration))  # before any grading
    if cal is not None:
        _warn_in_sample(cal, calibration, dataset)
    result = _graded(settings, json_out, len(rows), lambda progress: aevaluate(
        rows, settings=settings, scale=scale_t, label_threshold=label_threshold, concurrency=concurrency,
        dataset=str(dataset), calibration=cal, progress=progress))
    _finish(result, dataset, out=out, write=lambda r, o: write_predictions(r, o, inputs=(dataset, calibration)),
            fit=fit_result_calibration, fit_to=fit_calibration, render=render_eval, unit="rows", json_out=json_out)


def _expert(dataset: Path, settings, *, limit: int | None, sample: int | None, seed: int, concurrency: int,
            out: Path | None, json_out: bool, calibration=None, calibration_path: Path | None = None,
            fit_to: Path | None = None, by: list[str] | None = None) -> None:
    from ..evaluation.evaluate import select_rows
    from ..evaluation.expert import aevaluate_expert, fit_expert_calibration, read_expert_set, write_expert_predictions
    from ..rubrics import load_rubrics

    bank = load_rubrics(settings.rubrics_dir)
    rows = select_rows(read_expert_set(dataset, bank), limit=limit, sample=sample, seed=seed, order=lambda r: r.line)
    result = _graded(settings, json_out, len(rows), lambda progress: aevaluate_expert(
        rows, settings=settings, bank=bank, concurrency=concurrency, dataset=str(dataset), score_map=calibration,
        calibration=calibration.source if calibration is not None else None, by=by or (), progress=progress))
    _finish(result, dataset, out=out, write=lambda r, o: write_expert_predictions(r, o, inputs=(dataset, calibration_path)),
            fit=fit_expert_calibration, fit_to=fit_to, render=render_expert, unit="answers", json_out=json_out)


def _graded(settings, json_out: bool, total: int, grade: Callable[[Callable[[int, int], None]], Any]) -> Any:
    """Run `grade(progress)` (a coroutine) under a progress bar on stderr, after the offline
    grader's notice (kept off stdout, so --json stays parseable)."""
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    notice = settings.offline_notice
    if notice and not json_out:
        console(stderr=True).print(f"[dim]{notice}[/]")
    with Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("grading", total=total)
        return asyncio.run(grade(lambda done, total: bar.update(task, completed=done)))


def _warn_in_sample(cal: Any, path: Path | None, dataset: Path) -> None:
    if cal.fitted_on(dataset):
        sys.stderr.write(f"warning: {path} was fitted on this very data set ({dataset.name}): the calibrated "
                         "figures are in-sample, so better than on new data; measure it on another set\n")


def _finish(result: Any, dataset: Path, *, out: Path | None, write: Callable[[Any, Path], Any],
            fit: Callable[..., Any], fit_to: Path | None, render: Callable[[Any, Path], None], unit: str,
            json_out: bool) -> None:
    """What both kinds of dataset do once graded: write the predictions (--out), fit and save a
    calibration (--fit-calibration), show the result; exit 1 when some rows were not graded."""
    if out is not None:
        write(result, out)
    fitted = None
    if fit_to is not None:
        from ..evaluation.calibration import save_calibration

        import dataclasses

        from ..evaluation.calibration import dataset_fingerprint

        fitted = dataclasses.replace(fit(result, source=dataset.name), dataset_sha256=dataset_fingerprint(dataset))
        save_calibration(fitted, fit_to)
    if json_out:
        d = result.to_dict()
        if fitted is not None:
            d["fitted_calibration"] = {"path": str(fit_to), **fitted.to_dict()}
        print_json(d)
    else:
        render(result, dataset)
        if fitted is not None:
            console().print(f"[dim]calibration fitted on {fitted.n} {unit} ({len(fitted.xs)} knots) written to "
                            f"{fit_to}; measure it on other data with --calibration.[/]")
    if result.errors:
        raise typer.Exit(1)


def _default_reviews(dataset: Path) -> Path | None:
    """For a `batch` results file, the decisions beside it (as `report` and `review` do): a
    results file is not a dataset with human scores, so without them there is nothing to measure."""
    from ..batch.decisions import reviews_path
    from ..errors import UsageError
    from ..textfiles import looks_like_results

    if not dataset.is_file():
        return None  # missing, a folder, a FIFO (never opened): the dataset readers say what is wrong
    try:
        with dataset.open("rb") as fh:
            head = fh.read(64 * 1024)
    except OSError:
        return None
    if not looks_like_results(head):
        return None
    beside = reviews_path(dataset)
    if beside.is_file():
        return beside
    raise UsageError(f"{dataset} is a `mlgrade batch` results file, not a dataset with human scores: review some "
                     f"grades first (`mlgrade review {dataset}`), then `mlgrade eval {dataset}` measures mlgrade "
                     f"against your decisions")


def _reviewed(results: Path, reviews: Path, *, json_out: bool) -> None:
    """`eval RESULTS --reviews R`: the reviewer is the expert; the metrics are the expert set's."""
    from ..batch.reviews import reviewed_pairs
    from ..errors import UsageError
    from ..evaluation.reviewed import review_agreement

    if not results.is_file():
        raise UsageError(f"{results}: no such results file")
    pairs = reviewed_pairs(results, reviews, warn=lambda message: sys.stderr.write(f"warning: {message}\n"))
    if not pairs:
        raise UsageError(f"{reviews}: no decision matches a graded line of {results}")
    result = review_agreement(pairs, dataset=str(results))
    if json_out:
        d = result.to_dict()
        d["kind"] = "reviews"
        d["reviews"] = str(reviews)
        print_json(d)
        return
    from rich.table import Table

    con = console()
    m = result.metrics
    scored = m.get("n", 0)
    summary = Table(title=f"{results.name} against {reviews.name}: {m['decisions']} decision{'s' if m['decisions'] != 1 else ''} "
                          f"({scored} with a score), grader {result.grader}", header_style="bold")
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    if scored:
        for name, value in (("band accuracy", f"{m['band_accuracy']:.0%}"), ("within one band", f"{m['within_one_band']:.0%}"),
                            ("Spearman", fmt_stat(m["spearman"])), ("Pearson", fmt_stat(m["pearson"])),
                            ("MAE (0-100)", f"{m['mae']:.1f}")):
            summary.add_row(name, value)
    if m["band_only"]["n"]:
        summary.add_row(f"band accuracy, {m['band_only']['n']} band-only decisions", f"{m['band_only']['band_accuracy']:.0%}")
    for label, o in m["overridden"].items():
        if o["n"]:
            summary.add_row(f"band changed by the reviewer, {label}", f"{o['rate']:.0%} ({o['band_changed']}/{o['n']})")
    con.print(summary)
    if scored:
        con.print(confusion_table(m["confusion"], "bands: rows the reviewer's, columns mlgrade's", "reviewer"))
    if m["stale"]:
        con.print(f"[dim]{m['stale']} decision(s) were made on an earlier grading of their line (rubric or prompt "
                  "changed since); they are measured against the current grade.[/]")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
