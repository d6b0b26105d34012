"""Check that a quoted piece of evidence really occurs in the answer.

Both sides are normalised the same way (Unicode NFKC, zero-width characters removed, quotes
and dashes unified, case and whitespace folded) so a genuine quote is not rejected over
typography, while a paraphrase or a look-alike letter (Cyrillic "а" for Latin "a") still fails.
A quote must also be meaningful: at least MIN_QUOTE_WORDS words or MIN_QUOTE_CHARS characters
(unless the whole answer is shorter), so quoting "a" cannot verify a point. A quote made of
pieces joined by an ellipsis passes when every piece occurs, in order, and each piece is more
than a stray word.

A quote that is near-verbatim still verifies, through a bounded word-level match: a fixed typo
(a word within one or two character edits of the answer's word), a filler word dropped or added,
at most one such change per five words. Negations and numbers never match fuzzily, so a quote
that reverses or alters what the answer says does not verify. Only answers up to
FUZZY_MAX_ANSWER_CHARS are searched fuzzily (exact matching has no such bound).

A point claimed without a quote found in the answer earns nothing: a grader cannot be credited
for what it cannot point to (quoting "a" for every point used to keep half of each).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from .models import Judgment, MisconceptionFound, updated

MIN_QUOTE_WORDS = 3
MIN_QUOTE_CHARS = 15
_MIN_PIECE_WORDS, _MIN_PIECE_CHARS = 2, 8  # each piece of an ellipsis quote

_QUOTES = "\u2018\u2019\u201a\u201b\u2032\u0060\u00b4"
_DQUOTES = "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_TRANSLATE = str.maketrans({**{c: "'" for c in _QUOTES}, **{c: '"' for c in _DQUOTES}, **{c: "-" for c in _DASHES}})
_TYPOGRAPHIC = re.compile("[" + re.escape(_QUOTES + _DQUOTES + _DASHES) + "]")
# zero-width and invisible formatting characters (ZWSP, ZWNJ, ZWJ, word joiner, BOM, soft hyphen…)
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_WS = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|\u2026)\s*")
_WORD_SPAN = re.compile(r"[^\W_]+(?:'[^\W_]+)?")

FUZZY_MAX_ANSWER_CHARS = 20_000
FUZZY_MAX_QUOTE_WORDS = 60
FUZZY_MAX_EDITS = 3
FUZZY_MAX_STEPS = 20_000  # alignment steps per quote piece: ~10 ms, whatever the answer and quote
_WORDS_PER_EDIT = 5
_FILLER = frozenset("a an the of to and or is are was were be been that this it its in on at for with as by "
                    "so then very really just also which basically actually".split())
_NEVER_FUZZY = frozenset("not no never none nor cannot can't don't doesn't isn't aren't won't without "
                         "less more higher lower increase decrease".split())


def normalise(text: str) -> str:
    if text.isascii():
        # the same result, several times faster: NFKC, the invisible characters and the quote and
        # dash table touch no ASCII character but the backtick; `split()` knows the same whitespace
        # as `\s`, and casefold() is lower() on ASCII (tests/test_fast_paths.py compares them)
        return " ".join(text.replace("`", "'").split()).lower()
    return _normalise_unicode(text)


@lru_cache(maxsize=32)  # an answer is normalised for its judgments and again for its misconceptions
def _normalise_unicode(text: str) -> str:
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    # the table's characters are rare: finding them is far cheaper than str.translate's lookup of every character
    text = _TYPOGRAPHIC.sub(_typographic, text)
    # split() knows the whitespace `\s` knows (str.isspace): the same result as _WS.sub(" ").strip(), 3x faster
    return " ".join(text.split()).casefold()


def _typographic(m: re.Match[str]) -> str:
    return _TRANSLATE[ord(m.group())]


def _meaningful(text: str, words: int, chars: int) -> bool:
    return len(text) >= chars or len(_WORD.findall(text)) >= words  # the length first: it is free


def quote_found(quote: str, answer: str, *, normalised_answer: str | None = None) -> bool:
    """True when the quote occurs in the answer after normalisation and is meaningful: at least
    MIN_QUOTE_WORDS words or MIN_QUOTE_CHARS characters, unless the whole answer is shorter."""
    haystack = normalised_answer if normalised_answer is not None else normalise(answer)
    quote = normalise(quote)
    if quote.isascii() and "..." not in quote:
        # the common quote: one piece, already normal (on ASCII, normalising is idempotent)
        pieces = [quote.strip(" \"'")]
    else:
        pieces = [normalise(p).strip(" \"'") for p in _ELLIPSIS.split(quote)]
    pieces = [p for p in pieces if p]
    if not pieces:
        return False
    if not _meaningful(" ".join(pieces), MIN_QUOTE_WORDS, MIN_QUOTE_CHARS):
        # a short answer can only be quoted shortly: then the quote must be most of it
        if _meaningful(haystack, MIN_QUOTE_WORDS, MIN_QUOTE_CHARS) or sum(map(len, pieces)) * 2 < len(haystack):
            return False
    if len(pieces) > 1 and not all(_meaningful(p, _MIN_PIECE_WORDS, _MIN_PIECE_CHARS) for p in pieces):
        return False
    return _locate_all(pieces, haystack) is not None


def _locate_all(pieces: list[str], hay: str) -> list[tuple[int, int]] | None:
    """Where each piece occurs in the normalised answer, in order: exactly, else near-verbatim."""
    spans, pos = [], 0
    for piece in pieces:
        at = hay.find(piece, pos)
        span = (at, at + len(piece)) if at >= 0 else _fuzzy_find(piece, hay, pos)
        if span is None:
            return None
        spans.append(span)
        pos = span[1]
    return spans


def _similar(q: str, a: str) -> bool:
    """One quoted word standing for one answer word: equal, or a typo of a word of four letters
    or more (one edit; two from nine letters), never a negation or a number."""
    if q == a:
        return True
    if q in _NEVER_FUZZY or a in _NEVER_FUZZY or q.isdigit() or a.isdigit() or min(len(q), len(a)) < 4:
        return False
    from rapidfuzz.distance import Levenshtein

    limit = 2 if min(len(q), len(a)) >= 9 else 1
    return Levenshtein.distance(q, a, score_cutoff=limit) <= limit


def _fuzzy_find(piece: str, hay: str, start: int) -> tuple[int, int] | None:
    """The span of the answer (from `start`) that the quote reproduces near-verbatim, or None.
    An alignment of words: a typo, or a filler word dropped from either side, costs one edit;
    at most one edit per _WORDS_PER_EDIT quoted words and FUZZY_MAX_EDITS in all; the first and
    last quoted words must match an answer word (so the span is anchored and a quote cannot drift).
    Bounded for any input: quotes over FUZZY_MAX_QUOTE_WORDS words match exactly or not at all, and
    the search gives up (None: unverified) after FUZZY_MAX_STEPS steps."""
    if len(hay) > FUZZY_MAX_ANSWER_CHARS:
        return None
    quote = [m.group() for m in _WORD_SPAN.finditer(piece)]
    if not MIN_QUOTE_WORDS <= len(quote) <= FUZZY_MAX_QUOTE_WORDS:
        return None
    budget = min(len(quote) // _WORDS_PER_EDIT, FUZZY_MAX_EDITS)
    if budget == 0:
        return None
    words = [(m.group(), m.start(), m.end()) for m in _WORD_SPAN.finditer(hay, start)]
    present = {w for w, _, _ in words}
    if sum(q not in present for q in quote) > budget:  # each quoted word not in the answer costs an edit
        return None
    steps = [FUZZY_MAX_STEPS]
    for i, (w, _, _) in enumerate(words):
        if not _similar(quote[0], w):
            continue
        end = _align(quote, words, i, budget, steps)
        if end is not None:
            return words[i][1], words[end][2]
        if steps[0] <= 0:
            return None
    return None


def _align(quote: list[str], words: list[tuple[str, int, int]], first: int, budget: int,
           steps: list[int]) -> int | None:
    """Index of the answer word matching the quote's last word, aligning from `first` within
    `budget` edits; None when no such alignment exists or `steps` (shared by every start) runs
    out. Each step matches (equal or typo), skips an answer filler word or skips a quoted one;
    a match is tried first."""
    stack = [(0, first, budget)]  # (quote index, answer index, edits left), both indices matched next
    seen: set[tuple[int, int, int]] = set()
    while stack:
        qi, ai, left = stack.pop()
        if (qi, ai, left) in seen or ai >= len(words):
            continue
        steps[0] -= 1
        if steps[0] < 0:
            return None
        seen.add((qi, ai, left))
        q, a = quote[qi], words[ai][0]
        if left and 0 < qi < len(quote) - 1:
            if a in _FILLER:
                stack.append((qi, ai + 1, left - 1))   # the quote dropped a filler word of the answer
            if q in _FILLER:
                stack.append((qi + 1, ai, left - 1))   # the quote added one
        if q == a or (left and _similar(q, a)):
            if qi == len(quote) - 1:
                return ai
            stack.append((qi + 1, ai + 1, left - (q != a)))
    return None


def verify_judgments(judgments: list[Judgment], answer: str, *, require_quote: bool = True) -> list[Judgment]:
    """A point claimed with a quote that is not in the answer earns nothing; so does one claimed
    with no quote at all when `require_quote` (a model's claim: it must point at the answer). The
    offline grader's own judgments (require_quote=False) keep a quote-less point at partial at
    most: they come from our code, and a very short answer can match without a quotable span.
    Returns new judgments with `verified` and `claimed_status` set."""
    hay = normalise(answer)
    checked: list[Judgment] = []
    for j in judgments:
        claimed = j.claimed_status or j.status
        status, verified = j.status, True
        if j.status != "missing":
            if not j.evidence.strip():
                verified = False
                status = "missing" if require_quote else "partial"
            elif not quote_found(j.evidence, answer, normalised_answer=hay):
                status, verified = "missing", False
        if status == j.status and verified == j.verified and claimed == j.claimed_status:
            checked.append(j)  # already what it would become (the offline grader's, mostly): no copy
        else:
            checked.append(updated(j, status=status, verified=verified, claimed_status=claimed))
    return checked


def verify_misconceptions(found: list[MisconceptionFound], answer: str) -> list[MisconceptionFound]:
    hay = normalise(answer) if any(m.evidence.strip() for m in found) else ""  # most answers have none to check
    return [updated(m, verified=bool(m.evidence.strip()) and quote_found(m.evidence, answer, normalised_answer=hay))
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
    found = _locate_all(pieces, hay) if pieces else None
    return [(where[a], where[b - 1] + 1) for a, b in found] if found else []


# --- Look-alike folding, for detectors (never for quotes) ---
#
# Quotes are checked against the answer as written, so a look-alike letter keeps a quote from
# verifying. A detector of text aimed at the grader needs the opposite: "İgnore", "ignоre" (a
# Cyrillic o), "ｉｇｎｏｒｅ", "ig\u200dnore" must read as "ignore", or casefolding (which turns
# "İ" into "i" plus a combining dot) and any substring gate let them through. `skeleton` folds
# once, and keeps where each folded character came from, so spans found in the folded text map
# back to the original: what is reported and masked is the answer's own text.

# Letters of other scripts drawn like Latin ones (after casefold, which lowers them first). Not
# Unicode's whole confusables table: the letters a Latin keyword can be spelt with.
_CONFUSABLE_LETTERS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "һ": "h", "ӏ": "l", "ɡ": "g", "ү": "y", "ԍ": "g", "ո": "n", "ս": "u", "օ": "o",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ϲ": "c", "ϳ": "j", "ς": "c",
    # Latin letters that are not ASCII but read as ASCII ones
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɩ": "i", "ʀ": "r", "ɪ": "i", "ʏ": "y", "ɴ": "n", "ꜱ": "s", "ᴀ": "a",
    "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ᴏ": "o",
    "ᴘ": "p", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ᴢ": "z", "ß": "ss", "ſ": "s", "ł": "l", "ø": "o",
    "đ": "d", "ħ": "h",
}
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


@lru_cache(maxsize=4096)
def _fold_char(c: str, latin: bool = True) -> str:
    """One character as a detector reads it: format characters (zero-width joiners, soft hyphens,
    direction marks) and combining marks dropped, compatibility forms (fullwidth, mathematical
    letters, ligatures) made plain, case folded, look-alike letters made Latin (`latin`)."""
    if unicodedata.category(c) == "Cf":
        return ""
    out = []
    for ch in unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", c).casefold()):
        if unicodedata.combining(ch):
            continue
        out.append(_CONFUSABLE_LETTERS.get(ch, ch) if latin else ch)
    return "".join(out)


# A Greek or Russian answer is written in look-alike letters throughout: "Το LLM …" ("the LLM",
# Greek) folded to "to llm" and read as a note addressed to the grader. A script is the answer's
# own language when it has a letter that no Latin one looks like (π, λ, д, ж…); a word wholly in
# such a script is then left as written, and only words that mix it with other letters ("ignοre")
# are folded. A text without such a letter ("ЅУЅТЕМ", "ѕсоrе") is folded throughout, as before.
_SCRIPTS = ("GREEK", "CYRILLIC")


@lru_cache(maxsize=4096)
def _script(c: str) -> str:
    name = unicodedata.name(c, "")
    return next((s for s in _SCRIPTS if name.startswith(s)), "")


def _own_scripts(text: str) -> set[str]:
    return {s for c in set(text) if (s := _script(c)) and c.isalpha() and not _fold_char(c).isascii()}


def _single_script_word(text: str, i: int, script: str) -> bool:
    """Whether the word around text[i] has no letter outside `script` (format characters and
    combining marks belong to the word, so "ig\u200dnοre" is one word)."""
    for step in (-1, 1):
        j = i + step
        while 0 <= j < len(text):
            c = text[j]
            if c.isalpha():
                if _script(c) != script:
                    return False
            elif unicodedata.category(c)[0] != "M" and unicodedata.category(c) != "Cf":
                break
            j += step
    return True


def needs_skeleton(text: str) -> bool:
    """Whether `skeleton` reads the text otherwise than its lower-casing does: some character
    folds to another one (or to none)."""
    if text.isascii():
        return False
    return any(_fold_char(c) != c.lower() for c in set(text) if not c.isascii())


def skeleton(text: str) -> tuple[str, list[int]]:
    """The text folded for detectors (`_fold_char`, ASCII lower-cased), and for each folded
    character the index of the original character it came from, plus len(text) at the end, so a
    folded span [a, b) is the original span [where[a], where[b - 1] + 1)."""
    parts: list[str] = []
    where: list[int] = []
    pos = 0
    own = _own_scripts(text) if not text.isascii() else set()
    for m in _NON_ASCII.finditer(text):
        if m.start() > pos:
            parts.append(text[pos:m.start()].lower())
            where.extend(range(pos, m.start()))
        for i in range(m.start(), m.end()):
            c = text[i]
            script = _script(c) if own else ""
            f = _fold_char(c, not (script and script in own and _single_script_word(text, i, script)))
            parts.append(f)
            where.extend([i] * len(f))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:].lower())
        where.extend(range(pos, len(text)))
    where.append(len(text))
    return "".join(parts), where


def original_span(where: list[int], start: int, end: int) -> tuple[int, int]:
    """The original text's span of the folded span [start, end) (`skeleton`'s `where`)."""
    if end <= start:
        return where[start], where[start]
    return where[start], where[end - 1] + 1
