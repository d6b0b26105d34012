"""Refutation for the claim matcher (claims.py): whether a clause that holds a claim's words denies,
reports, questions or corrects the claim instead of asserting it, judged by where a negation,
contrast, attribution or verdict sits around the claim. Facts about a clause that every claim in
it asks for are found once per clause (a 20,000-character clause may hold hundreds of claims)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from operator import itemgetter
from typing import Any

from .claimwords import (ABSOLUTES, CLAIM_GAP, CONTRAST, NEGATORS, RARELY, SOFTENERS, VERDICT, VERDICT_CLAUSE_MAX,
                         VERDICT_PREDICATE, WARNING_STEMS, _ATTRIBUTION_BY_FIRST, _ATTRIBUTION_PAIRS,
                         _ATTRIBUTION_WORDS, _CONDITION, _COPULA, _EMPHASIS, _JUDGED, _JUDGED_SHORT, _NEXT_PREDICATE,
                         _RELATIVE, _WORDS_ONLY)
from .textmatch import Clause, Token


def is_negator(t: Token) -> bool:
    return t.text in NEGATORS or t.text.endswith(("n't", "n’t"))



def has_attribution(toks: list[Token], end: int) -> bool:
    """Whether an attribution phrase ("some people think") lies wholly within toks[:end]."""
    return _attribution_end(toks) <= end


def _attribution_end(toks: list[Token]) -> int:
    """Where the earliest-ending attribution phrase of the clause ends (_NONE_ENDS: none does).
    Asked for every claim a clause may hold, with a different end each time: found once per clause,
    so a 20,000-character clause full of claims is scanned once, not once per claim."""
    known = _CLAUSE_FACTS.get(("attribution", id(toks)))
    if known is not None and known[0] is toks:
        return known[1]
    words = [t.text for t in toks]
    first = _NONE_ENDS
    if not (_ATTRIBUTION_PAIRS.isdisjoint(zip(words, words[1:])) and _ATTRIBUTION_WORDS.isdisjoint(words)):
        for k, w in enumerate(words):
            for phrase in _ATTRIBUTION_BY_FIRST.get(w, ()):
                if k + len(phrase) < first and tuple(words[k:k + len(phrase)]) == phrase:
                    first = k + len(phrase)
    return _remember(("attribution", id(toks)), toks, first)


def has_verdict(toks: list[Token]) -> bool:
    known = _CLAUSE_FACTS.get(("verdict", id(toks)))
    if known is not None and known[0] is toks:
        return known[1]
    return _remember(("verdict", id(toks)), toks, any(
        t.text in VERDICT or (t.text in VERDICT_PREDICATE and n and toks[n - 1].text in _COPULA)
        for n, t in enumerate(toks)))


def _after_facts(toks: list[Token]) -> tuple[int, int]:
    """The last index of a WARNING word in the clause, and the last of a negation followed within
    two words by a verdict ("not true"): -1 when none. A claim ending at token j has one after it
    when the index is past j; asked for each claim of a clause, so found once per clause."""
    known = _CLAUSE_FACTS.get(("after", id(toks)))
    if known is not None and known[0] is toks:
        return known[1]
    # a negated warning is no warning: "k=1 works best, it never overfits" makes the claim
    warned = max((n for n, t in enumerate(toks) if t.stem in WARNING_STEMS
                  and not any(is_negator(a) for a in toks[max(0, n - 2):n])
                  and not any(is_negator(a) for a in toks[n + 1:n + 3])), default=-1)
    judged = max((n for n, t in enumerate(toks[:-1]) if is_negator(t)
                  and any(a.text in _JUDGED for a in toks[n + 1:n + 3])), default=-1)
    return _remember(("after", id(toks)), toks, (warned, judged))


# Facts about one clause's tokens, by the list's identity; the list is kept with its fact, so its
# id() cannot be reused by another while remembered. Bounded: a long batch stays memory-flat.
_CLAUSE_FACTS: dict[tuple[str, int], tuple[list[Token], Any]] = {}
_NONE_ENDS = 1 << 62  # past any `end` a caller may ask about


def _remember(key: tuple[str, int], toks: list[Token], fact: Any) -> Any:
    if len(_CLAUSE_FACTS) >= 64:
        _CLAUSE_FACTS.clear()
    _CLAUSE_FACTS[key] = (toks, fact)
    return fact


def _verdict_clause(c: Clause | None) -> bool:
    """A short comment clause: "That is wrong.", "Not true.", "No.", "A common misconception"."""
    if c is None or len(c.tokens) > VERDICT_CLAUSE_MAX:
        return False
    toks = c.tokens
    if has_verdict(toks) or any(t.text in VERDICT_PREDICATE for t in toks[:1]):
        return True
    if len(toks) <= 4 and any(is_negator(t) for t in toks):
        return len(toks) == 1 or any(t.text in _JUDGED_SHORT for t in toks)
    return False


def refuted(clauses: list[Clause], k: int, span: tuple[int, int], text: str) -> bool:
    """Whether clause k denies, reports or corrects the claim found at token range `span`."""
    c = clauses[k]
    toks = c.tokens
    i, j = span
    if text[c.end:c.end + 3].lstrip(" )\"'’”").startswith("?"):
        return True  # a question asserts nothing
    if has_verdict(toks):
        return True
    before = toks[:i]
    if any((t.text in RARELY or t.text in SOFTENERS and _absolute(toks, i, j))
           and _WORDS_ONLY.fullmatch(text, t.end, toks[i].start) for t in before[-2:]):
        return True  # "almost no information is lost", "often without accuracy loss"
    last_comma = text.rfind(",", 0, toks[i].start)  # a comma after token t: one at t.end or later
    if i > _LONG_BEFORE:
        if _denied_before(toks, i, last_comma):
            return True
    else:
        for n, t in enumerate(before):
            if last_comma >= t.end:
                if t.text in CONTRAST and any(r.text in _RELATIVE for r in before[n + 1:]):
                    return True  # "unlike supervised learning, which needs labels": about the other thing
                continue  # "if it does not generalise, add more layers": the negation is in another phrase
            nxt = toks[n + 1].text if n + 1 < len(toks) else ""
            if is_negator(t) and (nxt not in _EMPHASIS or n + 1 == i):  # "not only" denies a claim that starts "only"
                return True
            if t.text in CONTRAST:
                return True
    if has_attribution(toks, i):
        return True
    after = toks[j + 1:]
    for n, t in enumerate(after[:CLAIM_GAP]):
        if text[toks[j + n].end:t.start].strip(" -'\"’“”()"):
            break
        if t.text in _NEXT_PREDICATE:
            break  # "… is slow because nothing is shared": the negation is the next statement's
        if is_negator(t) and t.text != "without" and (n + 1 >= len(after) or after[n + 1].text not in _EMPHASIS):
            return True  # "the most complex model is not …", "knn learns nothing"
        if t.text in _CONDITION:
            return True  # "0.5 is right only when costs are equal": a claim with its condition is not the claim
    warned, judged = _after_facts(toks)
    if warned > j:
        return True  # a warning word after the claim
    if judged > j:
        return True  # "… is not true", "… isn't the case"
    prev = clauses[k - 1] if k > 0 else None
    nxt = clauses[k + 1] if k + 1 < len(clauses) else None
    if prev is not None and _verdict_clause(prev) and not any(is_negator(t) for t in prev.tokens):
        return True  # "A common misconception: …", "Wrong: …"
    return _verdict_clause(nxt)  # "… That is wrong.", "… Not true."


# Past this many tokens before a claim, refuted reads them through _denied_before.
_LONG_BEFORE = 48
_END = itemgetter(1)  # Token.end


def _denied_before(toks: list[Token], i: int, last_comma: int) -> bool:
    """refuted's test of the tokens before a claim starting at token i, with the clause's negations,
    contrasts and relative pronouns indexed once: a 20,000-character clause holds hundreds of claims,
    each once re-read from the clause's start. The same test (any token may decide it, so order does
    not matter): before the last comma, a contrast followed by a relative pronoun ("unlike supervised
    learning, which needs labels"); after it, a contrast, or a negation not followed by emphasis
    ("not only") unless the claim starts with that word."""
    contrasts, relatives, plain, emphatic = _before_facts(toks)
    split = bisect_right(toks, last_comma, 0, i, key=_END)  # the tokens ending at or before the last comma
    if contrasts and contrasts[0] < split:  # the earliest such contrast has the most tokens after it
        r = bisect_right(relatives, contrasts[0])
        if r < len(relatives) and relatives[r] < i:
            return True
    for found in (contrasts, plain):
        at = bisect_left(found, split)
        if at < len(found) and found[at] < i:
            return True
    at = bisect_left(emphatic, i - 1)  # "not only" right before a claim that starts "only"
    return i - 1 >= split and at < len(emphatic) and emphatic[at] == i - 1


def _before_facts(toks: list[Token]) -> tuple[list[int], list[int], list[int], list[int]]:
    """Indices of the clause's contrast words, relative pronouns, negations not followed by emphasis,
    and negations followed by it ("not only")."""
    known = _CLAUSE_FACTS.get(("before", id(toks)))
    if known is not None and known[0] is toks:
        return known[1]
    contrasts, relatives, plain, emphatic = [], [], [], []
    last = len(toks) - 1
    for n, t in enumerate(toks):
        if t.text in CONTRAST:
            contrasts.append(n)
        if t.text in _RELATIVE:
            relatives.append(n)
        if is_negator(t):
            (emphatic if n < last and toks[n + 1].text in _EMPHASIS else plain).append(n)
    return _remember(("before", id(toks)), toks, (contrasts, relatives, plain, emphatic))


def _absolute(toks: list[Token], i: int, j: int) -> bool:
    return any(is_negator(t) or t.text in ABSOLUTES for t in toks[i:j + 1])

