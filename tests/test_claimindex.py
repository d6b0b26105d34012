"""The misconception-cue index (graders/claimindex.py) and the prefilters of issue 22's speed work
find exactly what the full scans find: every rubric's own cues, stated in one clause, across an
anaphor, denied, in code with odd spacing and case, and mixed into one answer."""

from __future__ import annotations

import random
import re

import pytest

from mlgrade.graders.anaphora import claim_hits
from mlgrade.graders.refutation import has_attribution
from mlgrade.graders.offline_units import compile_rubric
from mlgrade.graders.textmatch import _ABBREV, _ABBREV_OPEN, _abbreviation_before, clause_ends, clauses, tokenize
from mlgrade.rubrics import load_rubrics

BANK = list(load_rubrics())


def _answers(rubric, rng: random.Random) -> list[str]:
    """Answers built from the rubric's own misconception cues: each cue asserted, denied, split
    across an anaphor ("X. It ..."), in code with spaces and capitals, and several in one answer."""
    cues = [c for m in rubric.misconceptions for c in m.cues]
    out = []
    for cue in cues:
        words = cue.split()
        out.append(f"In practice {cue}.")
        out.append(f"It is not true that {cue}. That is a myth.")
        if len(words) > 2:
            out.append(f"{words[0].capitalize()} {words[1]} come up often. It {' '.join(words[2:])} in my view.")
            out.append(f"The {words[0]} is simple. They {' '.join(words[1:])}, so this matters.")
        out.append(" ".join(ch.upper() if rng.random() < 0.3 else ch for ch in cue.replace("", " ").strip()))
        # non-ASCII answers: accents, no-break spaces, ß (lower() keeps it), and the letters that
        # IGNORECASE matches to ASCII ones ("ſ" for s, "K" for k, "ı" for i) in place of the cue's
        out.append("Naïve café: " + "\u00a0".join(ch.upper() if rng.random() < 0.3 else ch for ch in cue) + " — Straße.")
        out.append("Café: " + cue.translate(str.maketrans({"s": "\u017f", "k": "\u212a", "i": "\u0131"})) + ".")
    for _ in range(10):
        picked = rng.sample(cues, min(6, len(cues)))
        out.append(" ".join(f"{c}." if rng.random() < 0.5 else f"Some think {c}, but no." for c in picked))
    return out


@pytest.mark.parametrize("rubric", BANK, ids=lambda r: r.id)
def test_the_index_finds_exactly_what_testing_every_cue_finds(rubric):
    compiled = compile_rubric(rubric)
    rng = random.Random(rubric.id)
    fired = 0
    for text in _answers(rubric, rng):
        spans = clauses(text)
        masks = [compiled.index.masks(c.tokens) for c in spans]
        full = claim_hits(compiled.misconceptions, spans, text, masks)
        indexed = claim_hits(compiled.misconceptions, spans, text, masks, compiled.claim_index)
        assert indexed == full, text
        fired += bool(full)
    assert fired  # the answers do state claims: the comparison is not between two empty lists


def test_a_code_cue_is_found_whatever_its_spacing_and_case():
    rubric = next(r for r in BANK if any(re.search(r"[^\w\s'’-]", c) for m in r.misconceptions for c in m.cues))
    compiled = compile_rubric(rubric)
    cue = next(c for m in rubric.misconceptions for c in m.cues if re.search(r"[^\w\s'’-]", c))
    text = "Here is my code: " + " ".join(cue.upper()) + " and that is all."
    spans = clauses(text)
    masks = [compiled.index.masks(c.tokens) for c in spans]
    hits = claim_hits(compiled.misconceptions, spans, text, masks, compiled.claim_index)
    assert hits == claim_hits(compiled.misconceptions, spans, text, masks) and hits


def _attribution_by_scan(words: list[str]) -> bool:
    from mlgrade.graders.claimwords import _ATTRIBUTION

    return any(tuple(words[k:k + len(p)]) == p for p in _ATTRIBUTION for k in range(len(words) - len(p) + 1))


@pytest.mark.parametrize("text", [
    "some people think knn is a clustering method", "it is tempting to add more layers", "naively one adds layers",
    "beginners often scale the labels", "it is often said that bagging reduces bias", "do not confuse knn with k-means",
    "knn is a clustering method", "it is a common belief", "a common belief is that", "people",
])
def test_attribution_found_once_per_clause_agrees_with_the_scan_for_every_end(text):
    toks = tokenize(text)
    for end in range(len(toks) + 3):
        assert has_attribution(toks, end) == _attribution_by_scan([t.text for t in toks[:end]]), end


def _abbreviation_by_pattern(text: str, start: int, end: int) -> bool:
    # the check without its long-word shortcut
    if text[start:end].strip() != "." or "\n" in text[start:end]:
        return False
    head = text[max(0, start - 8):start + 1]
    if not _ABBREV.search(head):
        return False
    if _ABBREV_OPEN.search(head):
        return True
    nxt = text[end:end + 40].lstrip()
    return not nxt or not nxt[0].isupper()


def test_the_long_word_shortcut_keeps_every_abbreviation():
    rng = random.Random(22)
    pieces = ["e.g.", "i.e.", "etc.", "al.", "approx.", "vs.", "w.r.t.", "a.k.a.", "No.", "x.", "Xapprox.", "approx",
              "fig.", "sec.", "Ch.", "word.", "sentence.", "abcdefg.", "abcdef.", "_abcdef.", "é.", "naïve.", "The", "a"]
    for _ in range(400):
        text = " ".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        for start, end in clause_ends(text):
            assert _abbreviation_before(text, start, end) == _abbreviation_by_pattern(text, start, end), text


_ONE_CLAUSE_OF_CUES = (
    "import resource\n"
    "from mlgrade.grading import finalize\n"
    "from mlgrade.graders.offline import OfflineGrader\n"
    "from mlgrade.rubrics import load_rubrics\n"
    "g = OfflineGrader()\n"
    "for r in load_rubrics():\n"
    "    cues = [c for m in r.misconceptions for c in m.cues] + [c for kp in r.key_points for c in kp.cues]\n"
    "    parts = [f'the {c.split()[0]} works, it {\" \".join(c.split()[1:])}' if i % 3 else c for i, c in enumerate(cues)]\n"
    "    answer = ', '.join(parts * 40)[:20_000]\n"
    "    finalize(r, answer, g.judge(r, answer), grader='offline')\n"
)


def test_one_long_clause_full_of_the_rubrics_own_claims_is_graded_in_linear_time():
    """Every rubric's cues, asserted and referred back to ("the X works, it ..."), glued into one
    20,000-character clause: each claim found asked the clause the same questions again (is there
    an attribution, a verdict, a warning after it?) by scanning it, 1.5 s for one answer to q12."""
    from test_textmatch import _graded_within

    _graded_within(7, _ONE_CLAUSE_OF_CUES, "25 one-clause answers made of the rubrics' own cues")
