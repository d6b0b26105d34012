"""`mlgrade questions list|show`."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import JsonOpt, RubricsOpt, SectionOpt, bank_from, console, option, print_json

# Like `mlgrade history`, a group for browsing: its bare name shows the listing (exit 0). Groups of
# actions (`mlgrade rubrics validate|derive`) have no natural default and show their usage instead.
questions = typer.Typer(invoke_without_command=True)  # help: the callback's docstring


@questions.callback()
def _group(ctx: typer.Context) -> None:
    """Browse the question bank (`mlgrade questions` alone lists it).

    Examples:

      mlgrade questions

      mlgrade questions show q15 --answer
    """
    if ctx.invoked_subcommand is None:
        list_questions(section=None, json_out=False, rubrics=None)


@questions.command("list")
def list_questions(
    section: SectionOpt = None,
    json_out: JsonOpt = False,
    rubrics: RubricsOpt = None,
) -> None:
    """List the questions: id, section, kind, difficulty and question.

    Examples:

      mlgrade questions list

      mlgrade questions list --section nlp --json
    """
    items = bank_from(rubrics).by_section(section)  # an unknown section is a one-line UsageError
    if json_out:
        print_json([{"id": r.id, "number": r.number, "section": r.section, "kind": r.kind,
                     "difficulty": r.difficulty, "question": r.question} for r in items])
        return
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    for col in ("id", "section", "kind", "difficulty"):
        table.add_column(col, no_wrap=True)
    table.add_column("question", overflow="fold")
    for r in items:
        table.add_row(r.id, r.section, r.kind, r.difficulty, r.question)
    console().print(table)


@questions.command("show")
def show_question(
    question_id: Annotated[str, typer.Argument(help="Question id: q3, q03 or 3.", metavar="ID", show_default=False)],
    answer: Annotated[bool, option("--answer", "-a", help="Also print the model answer and key points.")] = False,
    json_out: JsonOpt = False,
    rubrics: RubricsOpt = None,
) -> None:
    """Show one question (and with --answer, its model answer and key points).

    Examples:

      mlgrade questions show q15

      mlgrade questions show 24 --answer
    """
    rubric = bank_from(rubrics).get(question_id)
    if json_out:
        data = rubric.model_dump(mode="json") if answer else {
            k: getattr(rubric, k) for k in ("id", "number", "section", "kind", "difficulty", "question")}
        print_json(data)
        return
    from ..render import render_question

    render_question(rubric, console(), with_answer=answer)


def register(app: typer.Typer) -> None:
    app.add_typer(questions, name="questions")
