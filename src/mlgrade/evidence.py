"""Check that a quoted piece of evidence really occurs in the answer.

Both sides are normalised the same way (Unicode NFKC, zero-width characters removed, quotes
and dashes unified, case and whitespace folded) so a genuine quote is not rejected over
typography, while a paraphrase or a look-alike letter (Cyrillic "а" for Latin "a") still fails.
A quote must also be meaningful: at least MIN_QUOTE_WORDS words or MIN_QUOTE_CHARS characters
(unless the whole answer is shorter), so quoting "a" cannot verify a point. A quote made of
pieces joined by an ellipsis passes when every piece occurs, in order, and each piece is more
than a stray word.
"""

from __future__ import annotations

import re
import unicodedata

from .models import Judgment, MisconceptionFound

MIN_QUOTE_WORDS = 3
MIN_QUOTE_CHARS = 15
_MIN_PIECE_WORDS, _MIN_PIECE_CHARS = 2, 8  # each piece of an ellipsis quote

_QUOTES = "\u2018\u2019\u201a\u201b\u2032\u0060\u00b4"
_DQUOTES = "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_TRANSLATE = str.maketrans({**{c: "'" for c in _QUOTES}, **{c: '"' for c in _DQUOTES}, **{c: "-" for c in _DASHES}})
# zero-width and invisible formatting characters (ZWSP, ZWNJ, ZWJ, word joiner, BOM, soft hyphen…)
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_WS = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|\u2026)\s*")
_STEP_DOWN = {"covered": "partial", "partial": "missing", "missing": "missing"}


def normalise(text: str) -> str:
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    return _WS.sub(" ", text.translate(_TRANSLATE)).strip().casefold()


def _meaningful(text: str, words: int, chars: int) -> bool:
    return len(_WORD.findall(text)) >= words or len(text) >= chars


def quote_found(quote: str, answer: str, *, normalised_answer: str | None = None) -> bool:
    """True when the quote occurs in the answer after normalisation and is meaningful: at least
    MIN_QUOTE_WORDS words or MIN_QUOTE_CHARS characters, unless the whole answer is shorter."""
    haystack = normalised_answer if normalised_answer is not None else normalise(answer)
    pieces = [normalise(p).strip(" \"'") for p in _ELLIPSIS.split(normalise(quote))]
    pieces = [p for p in pieces if p]
    if not pieces:
        return False
    if not _meaningful(" ".join(pieces), MIN_QUOTE_WORDS, MIN_QUOTE_CHARS):
        # a short answer can only be quoted shortly: then the quote must be most of it
        if _meaningful(haystack, MIN_QUOTE_WORDS, MIN_QUOTE_CHARS) or sum(map(len, pieces)) * 2 < len(haystack):
            return False
    if len(pieces) > 1 and not all(_meaningful(p, _MIN_PIECE_WORDS, _MIN_PIECE_CHARS) for p in pieces):
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
    for i, raw in enumerate(answer):
        if _INVISIBLE.match(raw):
            continue
        for ch in unicodedata.normalize("NFKC", raw).translate(_TRANSLATE):  # as normalise(), per character
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
