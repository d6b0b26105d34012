"""The shortcuts for one long clause (issue 27 H3) are exact: find_claim's start gate and refuted's
indexed reading of the tokens before a claim give what the plain walks give, on clauses with
asides, commas, articles and negations, and on the cases a shortcut would be most likely to skip."""

from __future__ import annotations

import random

import pytest

import mlgrade.graders.claims as claims
import mlgrade.graders.refutation as refutation
from mlgrade.graders.claims import compile_claim, find_claim, index_claim
from mlgrade.graders.refutation import refuted
from mlgrade.graders.cueindex import CueWords
from mlgrade.graders.textmatch import clauses, tokenize

CUES = ["knn is a clustering method", "knn is lazy", "knn is the lazy learner", "knn is not lazy", "a knn is a method",
        "knn the a clustering", "knn is an a the lazy learner", "lazy learner", "knn works a method", "no training",
        "knn is a clustering method works lazy", "knn works", "is lazy learner", "knn the the the lazy"]
WORDS = ["knn", "is", "a", "the", "clustering", "method", "lazy", "learner", "not", "much", "works", "no", "training",
         "(like svm)", "(e.g. svm and trees)", ", such as svm,", ", e.g. svm,", ", i.e. svm,", ", for example svm,",
         "(a b c d e f g h i j)", ", like", "(", ")", "svm", "an", "only", "unlike", "which", "instead", "isn't"]
GAPS = [" "] * 8 + ["  ", ", ", ",", " (", ") ", " - ", "; ", "-"]


def _clause_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(WORDS) + rng.choice(GAPS) for _ in range(n))


def _find(cue, clause, text, masks, first, gate_min):
    old = claims.GATE_MIN
    claims.GATE_MIN = gate_min
    try:
        return find_claim(cue.cue, clause, text, bits=cue.bits, masks=masks, first=first)
    finally:
        claims.GATE_MIN = old


@pytest.mark.parametrize("seed", range(3))
def test_gated_find_claim_is_the_plain_walk(seed):
    rng = random.Random(seed)
    matched = 0
    for _ in range(200):
        words = CueWords()
        cues = [index_claim(compile_claim(c), words) for c in CUES]
        text = _clause_text(rng, rng.randrange(5, 90))
        for c in clauses(text, tokenize(text)):
            masks = words.masks(c.tokens)
            n = len(c.tokens)
            for cue in cues:
                for first in (None, range(rng.randrange(0, n + 1), rng.randrange(0, n + 3))):
                    plain = _find(cue, c, text, masks, first, 10**9)
                    assert _find(cue, c, text, masks, first, 1) == plain, (text[c.start:c.end], cue.cue.source, first)
                    matched += plain is not None
    assert matched > 30  # the comparison covers matches, not only misses


@pytest.mark.parametrize("between", ["(like many lazy methods)", ", such as svm,", ", e.g. svm,"])
def test_gate_lets_a_claim_through_an_aside_in_a_long_clause(between):
    """The cue's next word lies past an aside, further than the gate's reach without one."""
    text = "knn is fast, " * 10 + f"knn {between} is a clustering method"
    words = CueWords()
    cue = index_claim(compile_claim("knn is a clustering method"), words)
    (c,) = clauses(text, tokenize(text))
    masks = words.masks(c.tokens)
    span = _find(cue, c, text, masks, None, 1)
    assert span is not None and c.tokens[span[0]].start == text.rindex("knn")
    assert span == _find(cue, c, text, masks, None, 10**9)


@pytest.mark.parametrize("seed", range(3))
def test_long_run_before_a_claim_is_read_as_the_short_one(seed):
    rng = random.Random(100 + seed)
    tested = 0
    for _ in range(400):
        text = _clause_text(rng, rng.randrange(2, 120))
        cs = clauses(text, tokenize(text))
        for k, c in enumerate(cs):
            for _ in range(4):
                i = rng.randrange(0, len(c.tokens))
                j = rng.randrange(i, len(c.tokens))
                old = refutation._LONG_BEFORE
                try:
                    refutation._LONG_BEFORE = 0
                    fast = refuted(cs, k, (i, j), text)
                    refutation._LONG_BEFORE = 10**9
                    slow = refuted(cs, k, (i, j), text)
                finally:
                    refutation._LONG_BEFORE = old
                assert fast == slow, (text[c.start:c.end], i, j)
                tested += i > 0
    assert tested > 500


@pytest.mark.parametrize(("before", "denied"), [
    ("unlike trees, which split greedily, ", True),   # contrast and relative before the last comma
    ("unlike trees, ", False),                        # a contrast in an earlier phrase, no relative
    ("we know, not ", True),                          # a negation after the last comma
    ("we know, not only ", False),                    # "not only": emphasis ...
    ("we know, it is not ", True),
    ("instead ", True),
])
def test_long_clause_before_a_claim(before, denied):
    """Past _LONG_BEFORE tokens, the indexed reading decides as the plain one did on short clauses."""
    filler = "svm works well here " * 15
    text = filler + before + "knn is lazy and fast"
    (c,) = clauses(text, tokenize(text))
    i = next(n for n, t in enumerate(c.tokens) if t.start == text.rindex("knn"))
    assert i > refutation._LONG_BEFORE
    assert refuted([c], 0, (i, i + 2), text) is denied
