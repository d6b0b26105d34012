"""Keyword stuffing, judged by the shape of a clause: a prose-looking clause that is really a list of
cue terms, unless it makes several statements of its own or restates one key point in its own words."""

from __future__ import annotations

from .offline_units import CompiledRubric, Unit, cue_hits
from .textmatch import is_verbish

# A prose clause hitting this many key points while having this few words of its own is a list.
STUFFED_MIN_POINTS = 3
STUFFED_MAX_FREE_SHARE = 0.35
# ...unless it has at least this many distinct function words besides the list glue "and"/"or",
STRUCTURED_MIN_GLUE = 4
# ...or at least this many of its comma-separated parts predicate something with a verb of their own.
COMPOUND_MIN_STATEMENTS = 2
# ...and its words besides the cues are this share distinct (not a verb-cycling template).
COMPOUND_MIN_DISTINCT = 0.75
# A prose clause holding this share of one key point's own words, with few words besides them, states
# that point: not a list, however dense in cue terms the point's sentence is (issue 26).
RESTATES_POINT = 0.9
RESTATES_MAX_OTHER = 0.25
STARTING_MAX = 1_024  # remembered bit sets per rubric (CompiledRubric.starting)


def _statements(answer: str, unit: Unit, compiled: CompiledRubric) -> int:
    """How many comma-separated parts of the clause make a statement of their own: a verb that is
    neither a function word, nor a cue word, nor one an earlier part already used. "k-NN matters
    because X dominates the distance, and for gradient descent it improves conditioning" makes two;
    "it is knn and svm, it is tree and invariant" makes none (its verbs are "is" and the cues), and
    "knn matters, tree matters, pca matters" one (a template repeats its verb)."""
    count, seen, new = 0, set(), set()
    cue_mask = compiled.cue_mask
    for i, (t, m) in enumerate(zip(unit.tokens, unit.masks)):
        if i and "," in answer[unit.tokens[i - 1].end:t.start]:
            count += bool(new)
            seen |= new
            new = set()
        if is_verbish(t) and not t.stop and t.stem not in seen and not m & cue_mask:
            new.add(t.stem)
    return count + bool(new)


def stuffed(unit: Unit, compiled: CompiledRubric, answer: str) -> bool:
    """A prose-looking clause that is really a list: it names several key points but has few
    words of its own besides the cue terms, and is not a compound of statements."""
    key = unit.have & compiled.first_bits  # which points a cue may start in depends on these bits alone
    starting = compiled.starting.get(key)
    if starting is None:
        if len(compiled.starting) >= STARTING_MAX:
            compiled.starting.clear()
        starting = compiled.starting[key] = [c for _, c in compiled.points if key & c.first_bits or c.literals]
    if len(starting) < STUFFED_MIN_POINTS:
        return False  # not even that many points have a cue starting here
    # The last test needs no cue hits: a clause with enough words of its own is no list whatever
    # the rest finds, and it is most clauses (their cue hits were half the cost of this check).
    cue_mask = compiled.cue_mask  # a unit's masks are its tokens' `index.mask`: is_cue_word, known
    content = [(t, m) for t, m in zip(unit.tokens, unit.masks) if not t.stop and len(t.text) > 1]
    free = [t for t, m in content if not m & cue_mask]
    if len(free) / max(1, len(content)) >= STUFFED_MAX_FREE_SHARE:
        return False
    touched, in_cues = 0, set()
    for concept in starting:  # the other points have no cue here
        hits, used = cue_hits(concept, unit)
        touched += bool(hits)
        in_cues |= used
    if touched < STUFFED_MIN_POINTS:
        return False
    # Dense expert sentences name many cue terms too, but they hold them together with varied
    # grammar of their own ("every rotation of a is a substring of a + a, so this is O(n)");
    # lists glue cues with "and". Function words inside the cue phrases themselves do not count.
    glue = {t.text for i, t in enumerate(unit.tokens)
            if t.stop and i not in in_cues and t.text not in ("and", "or", "also", "as", "well", "it", "is")}
    if len(glue) >= STRUCTURED_MIN_GLUE:
        return False
    # A dense compound sentence names several points because it makes several statements, each
    # with a verb of its own; a template that varies only its cue terms repeats its own words.
    if _statements(answer, unit, compiled) >= COMPOUND_MIN_STATEMENTS \
            and len({t.stem for t in free}) >= COMPOUND_MIN_DISTINCT * len(free):
        return False
    return True


def restates(unit: Unit, compiled: CompiledRubric) -> bool:
    """The clause is a key point in (nearly) its own words and order, with a verb: the feedback
    shows a missed point's text, and an answer that then states it must earn it as a statement,
    however terse the point's sentence is. A list of the same terms in another order is not."""
    if not any(map(is_verbish, unit.tokens)):
        return False
    seq = [t.stem for t in unit.tokens if not t.stop and len(t.text) > 1]
    distinct = set(seq)
    for _, concept in compiled.points:
        point = list(concept.words)
        if not point or len(distinct - concept.words.keys()) > RESTATES_MAX_OTHER * len(distinct):
            continue
        # the longest run of the point's words found in the clause in the same order
        row = [0] * (len(seq) + 1)
        for p in point:
            prev = 0
            for j, s in enumerate(seq, 1):
                prev, row[j] = row[j], prev + 1 if p == s else max(row[j], row[j - 1])
        if row[-1] >= RESTATES_POINT * len(point):
            return True
    return False
