"""The `eval SET.jsonl --by FIELD` tables: one per field, a line per value."""

from __future__ import annotations

from typing import Any

from ._common import console


def render_breakdowns(by: dict[str, list[dict[str, Any]]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ..evaluation.breakdown import clip

    con = console()
    for name, lines in by.items():
        table = Table(title=f"by {escape(name)}", header_style="bold")
        table.add_column(name, overflow="fold")
        for c in ("n", "band acc.", "MAE", "grader", "experts", "misc. recall"):
            table.add_column(c, justify="right")
        for g in lines:
            rec = g["misconception_recall"]
            if not g["n"]:
                table.add_row(escape(clip(g["value"])), f"0/{g['rows']}", *("—",) * 5)
                continue
            table.add_row(escape(clip(g["value"])), str(g["n"]), f"{g['band_accuracy']:.0%}", f"{g['mae']:.1f}",
                          f"{g['mean_score']:.1f}", f"{g['mean_expert']:.1f}",
                          "—" if rec["recall"] is None else f"{rec['recall']:.0%} ({rec['flagged']}/{rec['n']})")
        con.print(table)
    if by:
        con.print("[dim]grader, experts: mean score 0-100; misc. recall: answers the experts flagged that the "
                  "grader flagged too (— where a group has none); long values clipped, whole in --json.[/]")
