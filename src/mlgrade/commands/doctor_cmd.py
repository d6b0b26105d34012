"""`mlgrade doctor`: a thin front over mlgrade.doctor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ._common import (
    BaseUrlOpt,
    GraderOpt,
    JsonOpt,
    LegacyRefreshOpt,
    ModelOpt,
    RefreshOpt,
    console,
    option,
    print_json,
    settings_from,
)

if TYPE_CHECKING:
    from ..doctor import DoctorReport

_MARK = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]", "skipped": "[dim]skipped[/]"}


def _render(report: DoctorReport) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from ..doctor import one_line

    out = console()
    table = Table(title="configuration in effect", header_style="bold", box=box.SIMPLE_HEAD)
    for col in ("setting", "value", "from"):
        table.add_column(col, overflow="fold")
    for row in report.config:
        table.add_row(row["name"], "–" if row["value"] is None else escape(str(row["value"])), row["source"])
    out.print(table)
    out.print(f"grader: [bold]{report.mode}[/] · endpoint: {escape(report.base_url)} · model: {escape(report.model)} · "
              f"key: {'set' if report.key_set else 'not set'}")
    if report.checks:
        checks = Table(title="live check", header_style="bold", box=box.SIMPLE_HEAD)
        for col in ("step", "result", "latency", "detail"):
            checks.add_column(col, overflow="fold")
        for c in report.checks:
            latency = "" if c.latency_ms is None else f"{c.latency_ms:,} ms"
            checks.add_row(c.name, _MARK.get(c.status, c.status), latency, escape(one_line(c.detail, 300)))
        out.print(checks)
    elif report.mode == "llm":
        out.print("[dim]live check skipped[/]")
    store = report.store
    version = store.get("schema_version")
    state = (f"schema version {version} (this mlgrade: {store['expected_schema_version']})" if store.get("exists")
             else "not created yet (made on first use)")
    if store.get("problem"):
        state = f"[red]{escape(store['problem'])}[/]"
    out.print(f"store: {escape(store['path'])} · {state}")
    if report.sandbox:
        colour = "" if report.sandbox.get("available") else "[yellow]"
        out.print(f"{colour}sandbox: {escape(report.sandbox.get('summary', ''))}{'[/]' if colour else ''}")
    style = "bold green" if report.ok else "bold red"
    if report.benchmark.get("line"):
        out.print(f"{'[yellow]' if report.benchmark.get('stale') else ''}expert agreement: "
                  f"{escape(report.benchmark['line'])}{'[/]' if report.benchmark.get('stale') else ''}")
    out.print(f"[{style}]verdict:[/] {escape(report.verdict)}")


def doctor(
    json_out: JsonOpt = False,
    offline: Annotated[bool, option("--offline", help="Only show the configuration and the store; make no request.")] = False,
    refresh: RefreshOpt = False,
    no_cache_capabilities: LegacyRefreshOpt = False,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    grader: GraderOpt = None,
    reset_damaged_store: Annotated[bool, option(
        "--reset-damaged-store", help="If the history database is damaged, move it aside to mlgrade.db.damaged-<time> "
                                      "(nothing is deleted) so a fresh one starts. A healthy store is never touched.")] = False,
) -> None:
    """Show the configuration in effect (and where each value came from), check the endpoint
    live, and say in one line what to do next.

    The live check: GET /models, the endpoint's capabilities (response_format json_schema /
    json_object / plain, seed, temperature; cached per endpoint and model), and one tiny
    structured request, each with its latency. The API key is never printed. It also says which
    sandbox runs candidates' code (and what its first-run compile cost), or why none can, in
    which case coding answers are graded from their text only. Exit status: 0 ready (or offline
    mode), 1 the endpoint fails, 2 configuration error.

    Examples:

      mlgrade doctor

      OPENAI_BASE_URL=http://127.0.0.1:8080/v1 MLGRADE_MODEL=smollm2 mlgrade doctor --refresh

      mlgrade doctor --offline --json

      mlgrade doctor --reset-damaged-store   # after "the history database … is damaged"
    """
    from ..doctor import reset_damaged_store as move_damaged_store, run_doctor

    settings = settings_from(base_url=base_url, model=model, grader=grader)
    refresh = refresh or no_cache_capabilities
    if reset_damaged_store:
        moved = move_damaged_store(settings)
        if moved is not None:
            console(stderr=True).print(f"moved the damaged history database to {moved}; a fresh one starts on next use")
        elif not json_out:
            console(stderr=True).print("the history database is not damaged: nothing moved")
    if not json_out and not offline and settings.grader_kind == "llm":
        err = console(stderr=True)
        if err.is_terminal:
            with err.status(f"checking {settings.base_url or 'the OpenAI API'}…"):
                report = run_doctor(settings, live=True, refresh=refresh)
        else:
            report = run_doctor(settings, live=True, refresh=refresh)
    else:
        report = run_doctor(settings, live=not offline, refresh=refresh)
    if json_out:
        print_json(report.to_dict())
    else:
        _render(report)
    raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
