"""The "Needs review" part of reports: which lines a person should check, in the order
`mlgrade review` uses, with the reviewer's verdict beside mlgrade's grade."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..review import REASONS
from ..textfiles import counted, md_text
from .lines import iter_records, needs_review

if TYPE_CHECKING:
    from .aggregate import Aggregate

NO_CANDIDATE = "(no candidate)"


def reasons_of(rec: dict[str, Any]) -> list[str]:
    return list((rec.get("review") or {}).get("reasons") or [])


def md_cell(text: Any) -> str:
    return md_text(text).replace("|", "\\|").replace("\n", " ")


@dataclass
class View:
    """What a report shows: all lines or only those needing review, and the reviewer's
    decisions (id -> Decision) when a reviews file is there."""

    only_needs_review: bool = False
    decisions: dict[str, Any] = field(default_factory=dict)

    def keep(self, rec: dict[str, Any]) -> bool:
        return not self.only_needs_review or needs_review(rec)

    def reviewed_flagged(self, path: Path) -> int:
        if not self.decisions:
            return 0
        return sum(1 for _, rec in iter_records(path) if needs_review(rec) and str(rec.get("id")) in self.decisions)

    def reviewer(self, rec: dict[str, Any]) -> str:
        """The reviewer's verdict in a few words, '' when there is none."""
        d = self.decisions.get(str(rec.get("id")))
        if d is None:
            return ""
        if d.decision == "accept":
            return "accepted"
        return (f"{d.score:g} " if d.score is not None else "") + f"{d.band}" + (f": {d.note}" if d.note else "")


def _flagged_in_order(path: Path) -> Iterator[dict[str, Any]]:
    """The lines needing review, most serious reason first (the order `mlgrade review` uses)."""

    def severity(rec: dict[str, Any]) -> int:
        return min((REASONS.index(r) for r in reasons_of(rec) if r in REASONS), default=len(REASONS))

    keyed = sorted((severity(rec), -len(reasons_of(rec)), rec.get("candidate") or NO_CANDIDATE, rec.get("question_id") or "",
                    str(rec.get("id")), off) for off, rec in iter_records(path) if needs_review(rec))
    with path.open("rb") as fh:
        for *_, off in keyed:
            fh.seek(off)
            yield json.loads(fh.readline())


@dataclass(frozen=True)
class _Style:
    """How one format writes the "Needs review" section; `_needs_review` holds the logic."""

    heading: str
    nothing: str  # when no grade is flagged
    intro: Callable[[str, int, int, str], str]  # (reason counts, flagged, reviewed, file name)
    count: Callable[[str, int], str]  # one "reason n" of the counts
    row: Callable[[dict[str, Any], str, str], str]  # (record, reviewer's verdict, reasons)
    end: str


def _needs_review(path: Path, agg: Aggregate, view: View, style: _Style) -> Iterator[str]:
    yield style.heading
    if not agg.needs_review:
        yield style.nothing
        return
    counts = ", ".join(style.count(r, n) for r, n in agg.review_reasons.most_common())
    yield style.intro(counts, agg.needs_review, view.reviewed_flagged(path), path.name)
    for rec in _flagged_in_order(path):
        yield style.row(rec, view.reviewer(rec), ", ".join(reasons_of(rec)))
    yield style.end


def _flagged(flagged: int, counts: str, reviewed: int) -> str:
    if flagged == 1:
        return f"1 grade flagged ({counts}), {'reviewed' if reviewed else 'not reviewed yet'}; check it"
    return f"{counted(flagged, 'grade')} flagged ({counts}), {reviewed} of them reviewed; check them"


_MD = _Style(
    heading="## Needs review\n\n",
    nothing="No grade is flagged for review.\n\n",
    intro=lambda counts, flagged, reviewed, name: (
        f"{_flagged(flagged, counts, reviewed)} with `mlgrade review {name}`.\n\n"
        "| id | candidate | question | mlgrade | reviewer | reasons |\n|---|---|---|---:|---|---|\n"),
    count=lambda r, n: f"{r} {n}",
    row=lambda rec, reviewer, reasons: (
        f"| `{md_cell(rec.get('id')).replace('`', chr(39))}` | {md_cell(rec.get('candidate') or '')} | "
        f"{md_cell(rec.get('question_id'))} | {rec.get('score'):g} {rec.get('band')} | {md_cell(reviewer)} | "
        f"{md_cell(reasons)} |\n"),
    end="\n",
)

_HTML = _Style(
    heading="<h2>Needs review</h2>",
    nothing="<p class='meta'>No grade is flagged for review.</p>",
    intro=lambda counts, flagged, reviewed, name: (
        f"<p>{_flagged(flagged, counts, reviewed)} with "
        f"<code>mlgrade review {html.escape(name)}</code>.</p>"
        "<table><tr><th>id</th><th>candidate</th><th>question</th><th>mlgrade</th><th>reviewer</th>"
        "<th>reasons</th></tr>"),
    count=lambda r, n: f"{html.escape(r)} {n}",
    row=lambda rec, reviewer, reasons: (
        f"<tr><td>{html.escape(str(rec.get('id')))}</td><td>{html.escape(rec.get('candidate') or '')}</td>"
        f"<td>{html.escape(str(rec.get('question_id')))}</td>"
        f"<td class='n'>{rec.get('score'):g} {html.escape(str(rec.get('band')))}</td><td>{html.escape(reviewer)}</td>"
        f"<td>{html.escape(reasons)}</td></tr>"),
    end="</table>",
)


def md_needs_review(path: Path, agg: Aggregate, view: View) -> Iterator[str]:
    return _needs_review(path, agg, view, _MD)


def html_needs_review(path: Path, agg: Aggregate, view: View) -> Iterator[str]:
    return _needs_review(path, agg, view, _HTML)
