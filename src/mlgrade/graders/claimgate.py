"""The start gate of the claim matcher (claims.find_claim) for a long clause: which starts of a
cue's first word can still lead to a match, tested in C for all of them at once, before any walk.

A 20,000-character clause made of a rubric's own cues holds its first word hundreds of times; each
walk from a start costs a few microseconds of Python. The gate is a necessary condition only, so
every match the walk finds is still found (issue 27 H3): unless an aside opens on the way
(claims._past_aside), the walk moves at most CLAIM_GAP + 1 tokens per cue word.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from itertools import compress, repeat
from operator import and_, gt, itemgetter, neg, or_, sub

from .claimwords import ARTICLES, ASIDE_OPENERS, CLAIM_GAP
from .textmatch import Token

# From this many starts on, claims.find_claim tests each start's later words in C before walking from it.
GATE_MIN = 8
# How far past a start the gate looks: a word's possible positions, CLAIM_GAP + 1 per word of the cue.
_GATE_REACH = 4 * (CLAIM_GAP + 1)
_START, _END = itemgetter(0), itemgetter(1)  # Token.start, Token.end


@lru_cache(maxsize=20_000)
def _gates(words: tuple[str, ...], bits: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """(width, bit) for the cue's words after its first that every match must find (all but
    articles, which may be skipped), as far as _GATE_REACH: word j sits within (CLAIM_GAP + 1) * j
    tokens of the start unless an aside may open on the way (see _near)."""
    step = CLAIM_GAP + 1
    return tuple((step * j, bits[j]) for j in range(1, len(words))
                 if words[j] not in ARTICLES and step * j <= _GATE_REACH)


def gated(starts: list[int], toks: list[Token], text: str, masks: list[int], words: tuple[str, ...],
          bits: tuple[int, ...]) -> list[int]:
    """The starts from which a match of the cue may still be found: a necessary test, in C. Unless
    an aside opens on the way (_past_aside), find_claim's walk moves at most CLAIM_GAP + 1 tokens
    per word (none for a skipped article), so the cue's word j is among tokens
    i+1..i+(CLAIM_GAP+1)*j of the start i or nowhere; a start with a possible aside on the way passes."""
    for width, b in _gates(words, bits):
        near = _near(toks, text, masks, width)
        starts = list(compress(starts, map(and_, map(near.__getitem__, starts), repeat(b))))
        if not starts:
            break
    return starts


# Per clause (its tokens and masks, kept so their id()s cannot be reused): the gaps wider than one
# character, the padded masks, and _near's lists by width, built on first need. Bounded like _CLAUSE_FACTS.
_NEAR: dict[tuple[int, int], tuple[list[Token], list[int], list[list[int]], list[int], list[int]]] = {}


def may_start(positions: list[int], toks: list[Token], text: str, masks: list[int], words: tuple[str, ...],
              bits: tuple[int, ...]) -> Iterable[int]:
    """Per position (at most two past the clause's end), 0 where no match of the cue can start:
    its first word is not there, or a later one fails the test of `gated`. In C, for many
    positions at once (a long clause's anaphors)."""
    tests = [map(and_, map(_facts(toks, text, masks)[3].__getitem__, positions), repeat(bits[0]))]
    for width, b in _gates(words, bits):
        tests.append(map(and_, map(_near(toks, text, masks, width).__getitem__, positions), repeat(b)))
    return map(min, *tests) if len(tests) > 1 else tests[0]


def _facts(toks: list[Token], text: str, masks: list[int]) -> tuple[list[Token], list[int], list[list[int]], list[int],
                                                                     list[int]]:
    key = (id(toks), id(masks))
    got = _NEAR.get(key)
    if got is None or got[0] is not toks or got[1] is not masks:
        if len(_NEAR) >= 64:
            _NEAR.clear()
        pad = [0] * (_GATE_REACH + 2)
        # -1 after a token where an aside may open: a gap wider than one character (found in C) that holds
        # a parenthesis, or is a comma before an aside opener (the tests _past_aside starts with)
        wide = list(map(neg, map(gt, map(sub, map(_START, toks[1:]), map(_END, toks)), repeat(1))))
        for p in compress(range(len(wide)), wide):
            gap = text[toks[p].end:toks[p + 1].start]
            if "(" not in gap and not (gap.strip() == "," and (
                    toks[p + 1].text in ASIDE_OPENERS
                    or text[toks[p + 1].start:toks[p + 1].start + 3].lower() in ("e.g", "i.e"))):
                wide[p] = 0
        got = _NEAR[key] = (toks, masks, [[0] * (len(toks) + 2)], masks + pad, wide + [0] + pad)
    return got


def _near(toks: list[Token], text: str, masks: list[int], width: int) -> list[int]:
    """Per token i, the bits of tokens i+1..i+width, or every bit (-1) when an aside may open after
    one of tokens i..i+width-1 (find_claim then looks past it); two entries past the clause's end
    hold 0. Each width is built from the one before, in C."""
    _, _, levels, mpad, wpad = _facts(toks, text, masks)
    n = len(toks) + 2
    while len(levels) <= width:
        w = len(levels)
        levels.append(list(map(or_, map(or_, levels[-1], mpad[w:w + n]), wpad[w - 1:w - 1 + n])))
    return levels[width]


__all__ = ["GATE_MIN", "gated", "may_start"]
