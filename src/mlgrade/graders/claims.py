"""Polarity for the offline grader: is a clause asserting a claim, or denying, quoting or
correcting it?

Misconception cues are claims ("knn is a clustering", "no information is lost"). A cue fires when
its words appear in order in one clause, with at most a couple of words between them, and the
clause is not refuting it. Refutation is judged by where a negation sits, not by its mere presence:
- a negation inside the cue is part of the claim ("scaling is not needed" is the wrong claim);
- a negation or contrast word before the cue, or between its words, denies it ("it is not true
  that…", "unlike what some think…", "q-learning is not on-policy");
- a negation after the cue usually belongs to another statement ("knn is a clustering method that
  doesn't need labels" still makes the claim), unless it judges the claim ("… is not correct");
- words that label a statement as wrong ("myth", "misconception", "mistake", "wrong") anywhere
  in the clause, or a short framing/verdict clause just before or after it, refute it;
- a question ("is pca supervised?") asserts nothing.

Key points use the same notion the other way round: a cue right after a negation ("does not use a
vote") is no evidence for the point, and a clause that asserts one of the rubric's misconceptions
(the rubric's own list of opposites, e.g. "prediction is fast" for "prediction is expensive") is
no evidence for any point.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache, reduce
from itertools import compress, repeat
from operator import and_, or_

from .claimwords import ARTICLES, ASIDE_MAX, ASIDE_OPENERS, CLAIM_GAP, CODE_TAIL, CONTRAST, HEDGES, NEGATION_REACH, _EMPHASIS
from .claimgate import GATE_MIN, gated, may_start
from .cueindex import CueWords
from .refutation import is_negator, refuted
from .textmatch import Clause, Token, squash, stem, tokenize, word_matches



@dataclass(frozen=True, slots=True)
class ClaimCue:
    source: str
    words: tuple[str, ...]
    stems: tuple[str, ...]
    pattern: re.Pattern[str] | None  # code-like cues ("k=1 is best", "sorted(a) == sorted(b)")


@lru_cache(maxsize=20_000)
def compile_claim(cue: str) -> ClaimCue | None:
    words = tuple(t.text for t in tokenize(cue))
    if not words:
        return None
    symbolic = bool(re.search(r"[^\w\s'’-]", cue))
    pattern = None
    if symbolic:
        chars = [re.escape(c) for c in squash(cue)]
        pattern = re.compile(r"\s*".join(chars), re.IGNORECASE)
    return ClaimCue(cue, words, tuple(stem(w) for w in words), pattern)


@dataclass(frozen=True, slots=True)
class IndexedClaim:
    """A claim cue with its words' bits in one rubric's CueWords (cueindex.py)."""

    cue: ClaimCue
    bits: tuple[int, ...]
    need: int  # bits any match must find in the clause (0 for code-like cues: not word-matched)
    words_need: int = 0  # the bits of its words but articles: what any match, even split, must find


def index_claim(cue: ClaimCue, words: CueWords) -> IndexedClaim:
    if cue.pattern is not None:
        return IndexedClaim(cue, (), 0)
    bits = tuple(words.bit(w, s) for w, s in zip(cue.words, cue.stems))
    words_need = 0
    for w, b in zip(cue.words, bits):
        words_need |= 0 if w in ARTICLES else b
    return IndexedClaim(cue, bits, bits[0] | words_need, words_need)


def find_claim(cue: ClaimCue, clause: Clause, text: str, *, bits: tuple[int, ...] = (),
               masks: list[int] | None = None, first: range | None = None) -> tuple[int, int] | None:
    """Token index range [i, j] where the cue's words occur in order in the clause, each within
    CLAIM_GAP words of the previous one, with no negation or contrast word in the gaps unless the
    cue itself has one there. Code-like cues match their characters, ignoring spaces. With the
    cue's `bits` and the clause tokens' `masks` (cueindex.py), words are compared by bit. `first`
    limits where the first word may sit (a subject's position, the word after an anaphor)."""
    toks = clause.tokens
    if cue.pattern is not None:
        # code may run a little past the clause's last word: "split(' ')"
        m = cue.pattern.search(text, clause.start, clause.end + CODE_TAIL)
        if m is None or m.start() >= clause.end:
            return None
        inside = [k for k, t in enumerate(toks) if t.start < m.end() and t.end > m.start()]
        return (inside[0], inside[-1]) if inside else (0, 0)
    words, stems = cue.words, cue.stems
    if masks is not None and bits:
        def matches(j: int, k: int) -> bool:
            return bool(masks[k] & bits[j])
    else:
        def matches(j: int, k: int) -> bool:
            return word_matches(words[j], stems[j], toks[k].text, toks[k].stem)
    n = len(toks)
    where = range(n) if first is None else range(first.start, min(n, first.stop))
    if masks is not None and bits:  # the tokens holding the first word, found in C: a long clause has thousands
        starts: Iterable[int] = list(compress(where, map(and_, masks[where.start:where.stop], repeat(bits[0]))))
        if len(starts) >= GATE_MIN:  # type: ignore[arg-type]
            starts = gated(starts, toks, text, masks, words, bits)  # type: ignore[arg-type]
    else:
        starts = (i for i in where if matches(0, i))
    for i in starts:
        pos, ok = i, True
        for j in range(1, len(words)):
            found = None
            # one space between two words holds no aside: the common case, tested without slicing
            at = _past_aside(toks, text, pos, clause.end) if pos + 1 < n and toks[pos + 1].start - toks[pos].end > 1 \
                else pos
            for k in range(at + 1, min(n, at + 2 + CLAIM_GAP)):
                gap = text[toks[k - 1].end:toks[k].start]
                if gap.strip(" -'\"’“”()_./") and (k > at + 1 or at == pos):  # an aside's closing comma is no end
                    if k == pos + 1 and gap.strip() == "," and matches(j, k):
                        found = k  # "the more unlabelled data, the better": one comma between two words of the claim
                        break
                    break  # a comma or other punctuation ends the claim
                if matches(j, k):
                    found = k
                    break
                if is_negator(toks[k]) or toks[k].text in CONTRAST or toks[k].text in HEDGES or toks[k].text == "but":
                    break  # "reduces variance but not bias" does not say "reduces bias"
            if found is None:
                if words[j] in ARTICLES:
                    continue  # "knn is a clustering" ~ "knn is an unsupervised clustering"
                ok = False
                break
            pos = found
        if ok:
            return i, pos
    return None


def _past_aside(toks: list[Token], text: str, pos: int, end: int) -> int:
    """The last token of an aside that opens right after token `pos` ("bagging (like random forests)
    reduces bias", "boosting, such as xgboost, reduces variance"), or `pos` when none does: a claim
    resumes after it."""
    gap = text[toks[pos].end:toks[pos + 1].start]
    # the close must come within ASIDE_MAX words: no scan of a long clause for each claim word
    reach = min(end, toks[min(len(toks) - 1, pos + 1 + ASIDE_MAX)].start)
    if "(" in gap:
        close = text.find(")", toks[pos + 1].start, reach)
    elif gap.strip() == "," and (toks[pos + 1].text in ASIDE_OPENERS
                                 or text[toks[pos + 1].start:toks[pos + 1].start + 3].lower() in ("e.g", "i.e")):
        close = text.find(",", toks[pos + 1].end, reach)
    else:
        return pos
    if close < 0:
        return pos
    last = pos
    for k in range(pos + 1, min(len(toks), pos + 2 + ASIDE_MAX)):
        if toks[k].start > close:
            return last if k > pos + 1 else pos
        last = k
    return pos  # too long, or it runs to the clause's end: not an aside


def negated_cue(tokens: list[Token], start: int, cue_has_negation: bool) -> bool:
    """A key-point cue at token `start` right after a negation ("does not use a vote") shows the
    opposite of the point. "Not only" and "not just" are emphasis; a cue that holds its own
    negation ("no training") is judged as written."""
    if cue_has_negation:
        return False
    for k in range(start - 1, max(-1, start - 1 - NEGATION_REACH), -1):
        t = tokens[k]
        if tokens[k + 1].start - t.end > 1:
            break  # punctuation between: the negation belongs to another phrase
        if t.text == "without":
            continue  # "without scaling, distances are dominated": the cue is the consequence
        if is_negator(t):
            nxt = tokens[k + 1].text if k + 1 < len(tokens) else ""
            if nxt in _EMPHASIS:
                continue
            return True
    return False


@lru_cache(maxsize=20_000)
def cue_has_negation(cue: str) -> bool:
    return any(is_negator(t) for t in tokenize(cue))


def asserting_clause(cues: list[ClaimCue] | list[IndexedClaim], clauses: list[Clause], text: str,
                     masks: list[list[int]] | None = None, have: list[int] | None = None) -> int | None:
    """The first clause that asserts the claim with one of its cues, in that clause alone.
    Indexed cues need `masks` (each clause's token masks) and `have` (their unions)."""
    for k, c in enumerate(clauses):
        for cue in cues:
            if isinstance(cue, IndexedClaim):
                if have[k] & cue.need != cue.need:  # type: ignore[index]
                    continue  # some word of the claim is not in the clause
                span = find_claim(cue.cue, c, text, bits=cue.bits, masks=masks[k])  # type: ignore[index]
            else:
                span = find_claim(cue, c, text)
            if span is not None and not refuted(clauses, k, span, text):
                return k
    return None


def asserted_claims(claims: list[tuple[str, list[ClaimCue]]] | list[tuple[str, list[IndexedClaim]]],
                    clauses: list[Clause], text: str, masks: list[list[int]] | None = None) -> list[tuple[str, int]]:
    """(claim id, clause index) for every claim some clause asserts on its own: its first asserting
    clause. Indexed cues need `masks`, each clause's token masks from the same CueWords. Claims
    whose subject an earlier clause names: anaphora.claim_hits."""
    have, anywhere = clause_bits(masks)
    return [(cid, k) for (cid, _), k in zip(claims, asserting_clauses(claims, clauses, text, masks, have, anywhere))
            if k is not None]


def clause_bits(masks: list[list[int]] | None) -> tuple[list[int] | None, int]:
    """Each clause's cue-word bits (the union of its tokens' masks), and theirs: the answer's."""
    if masks is None:
        return None, 0
    have = [union(m) for m in masks]
    return have, union(have)


def asserting_clauses(claims: list[tuple[str, list[ClaimCue]]] | list[tuple[str, list[IndexedClaim]]],
                      clauses: list[Clause], text: str, masks: list[list[int]] | None, have: list[int] | None,
                      anywhere: int) -> list[int | None]:
    """Per claim, the first clause asserting it on its own (None: none does)."""
    return [asserting_clause(possible_cues(cues, anywhere, text), clauses, text, masks, have) for _, cues in claims]


def possible_cues(cues: list[ClaimCue] | list[IndexedClaim], anywhere: int, text: str) -> list:
    """The cues that can match in some single clause: an indexed cue with a word in no clause
    matches in none, and a code-like one (its characters with optional spaces between: no anchors)
    found nowhere in the text in no clause's stretch of it. Most claims have no cue left."""
    return [c for c in cues if not isinstance(c, IndexedClaim) or (
        anywhere & c.need == c.need if c.cue.pattern is None else c.cue.pattern.search(text) is not None)]


def union(masks: list[int]) -> int:
    return reduce(or_, masks, 0)


__all__ = ["ClaimCue", "gated", "may_start", "GATE_MIN", "IndexedClaim", "asserting_clause", "asserting_clauses", "clause_bits", "possible_cues", "union", "index_claim", "compile_claim", "find_claim", "refuted", "negated_cue", "cue_has_negation", "asserted_claims", "is_negator"]
