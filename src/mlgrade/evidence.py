"""Check that a quoted piece of evidence really occurs in the answer.

Normalisation is deliberately mild (case, whitespace, typographic quotes and dashes) so a
model cannot pass off a paraphrase as a quote. A quote made of pieces joined by an ellipsis
passes when every piece occurs, in order.
"""

from __future__ import annotations

import re

from .models import Judgment, MisconceptionFound

_TRANSLATE = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-", "\u00a0": " "})
_WS = re.compile(r"\s+")
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|\u2026)\s*")
_STEP_DOWN = {"covered": "partial", "partial": "missing", "missing": "missing"}


def normalise(text: str) -> str:
    return _WS.sub(" ", text.translate(_TRANSLATE)).strip().casefold()


def quote_found(quote: str, answer: str, *, normalised_answer: str | None = None) -> bool:
    """True when the quote (non-empty) occurs in the answer after normalisation."""
    haystack = normalised_answer if normalised_answer is not None else normalise(answer)
    pieces = [normalise(p).strip(" \"'") for p in _ELLIPSIS.split(quote)]
    pieces = [p for p in pieces if p]
    if not pieces:
        return False
    pos = 0
    for piece in pieces:
        at = haystack.find(piece, pos)
        if at < 0:
            return False
        pos = at + len(piece)
    return True


def verify_judgments(judgments: list[Judgment], answer: str) -> list[Judgment]:
    """Downgrade points whose evidence is not in the answer; a covered point with no evidence
    is partial at best. Returns new judgments with `verified` and `claimed_status` set."""
    hay = normalise(answer)
    checked: list[Judgment] = []
    for j in judgments:
        claimed = j.claimed_status or j.status
        status, verified = j.status, True
        if j.status != "missing":
            if not j.evidence.strip():
                verified = False
                if j.status == "covered":
                    status = "partial"
            elif not quote_found(j.evidence, answer, normalised_answer=hay):
                verified = False
                status = _STEP_DOWN[j.status]
        checked.append(j.model_copy(update={"status": status, "verified": verified, "claimed_status": claimed}))
    return checked


def verify_misconceptions(found: list[MisconceptionFound], answer: str) -> list[MisconceptionFound]:
    hay = normalise(answer)
    return [m.model_copy(update={"verified": bool(m.evidence.strip()) and quote_found(m.evidence, answer, normalised_answer=hay)})
            for m in found]


def quote_spans(quote: str, answer: str) -> list[tuple[int, int]]:
    """Where a quote occurs in the answer, as (start, end) offsets into the original text, under
    the same normalisation and ellipsis rule as quote_found; [] when it is not found. Used to
    highlight evidence in the answer for a reviewer."""
    norm: list[str] = []
    where: list[int] = []  # index in `answer` of each normalised character
    pending_space = False
    for i, ch in enumerate(answer.translate(_TRANSLATE)):
        if ch.isspace():
            pending_space = bool(norm)
            continue
        if pending_space:
            norm.append(" ")
            where.append(i - 1)
            pending_space = False
        for c in ch.casefold():
            norm.append(c)
            where.append(i)
    hay = "".join(norm)
    pieces = [p for p in (normalise(p).strip(" \"'") for p in _ELLIPSIS.split(quote)) if p]
    spans: list[tuple[int, int]] = []
    pos = 0
    for piece in pieces:
        at = hay.find(piece, pos)
        if at < 0:
            return []
        spans.append((where[at], where[at + len(piece) - 1] + 1))
        pos = at + len(piece)
    return spans
