"""The offline grader's compiled rubric and its view of an answer: the quotable units (clauses and
pairs of clauses), each with the rubric's cue words it holds as bits, and the cue hits of one key
point in one unit, found once and shared by the judging, topicality and stuffing checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from operator import itemgetter, or_

from ..models import KeyPoint, Rubric
from . import topicality
from .claimindex import ClaimIndex
from .claims import IndexedClaim, compile_claim, cue_has_negation, index_claim, is_negator, negated_cue
from .cueindex import CueWords, IndexedPhrase, find_indexed, index_phrase
from .textmatch import (
    STOPWORDS, Clause, Phrase, Token, compile_phrase, is_prose, squash, stem, tokenize, tokenize_words,
)

# Words of the question say little about the answer ("what is a prototype?" → "a prototype is…").
QUESTION_WORD_WEIGHT = 0.3
# Pair a prose clause with the fragment its colon introduces.
COLON_PAIRS = True
POSSIBLE_MAX = 1_024  # remembered bit sets per key point (Concept.possible); cleared when full


@dataclass(eq=False)  # hashed by identity: the key of a unit's cue hits
class Concept:
    """What evidence for one key point (or misconception) looks like."""

    phrases: list[Phrase]
    literals: list[str]
    words: dict[str, tuple[str, float]]  # stem -> (a surface form, weight)
    total: float
    indexed: list[IndexedPhrase]  # the phrases, with their words' bits in the rubric's CueWords
    cue_table: list[tuple[int, IndexedPhrase, bool]]  # per phrase: its `need`, itself, and whether the
    # cue holds its own negation ("no training", judged as written): what cue_hits walks, flat
    word_bits: list[tuple[int, float]]  # each of `words` as (bit, weight), in order
    word_mask: int  # the union of those bits
    first_bits: int  # the bits of the phrases' first words: a unit with none of them has no cue
    # the point's word overlap by the bits found (offline._overlap): a function of them alone, and
    # the same few subsets recur in every answer; bounded like the word caches
    overlaps: dict[int, float] = field(default_factory=dict)
    need_bits: int = 0  # the union of the phrases' `need`: all a unit's bits that decide which may match
    # the cue_table rows whose `need` a unit holds, by the unit's bits among need_bits (cue_hits): the
    # rows are tried in the same order, and the few bit sets a point's cue words form recur
    possible: dict[int, list[tuple[int, IndexedPhrase, bool]]] = field(default_factory=dict)


@dataclass
class Unit:
    """A quotable stretch of the answer: one clause, or two adjacent prose clauses."""

    start: int
    end: int
    tokens: list[Token]
    answer: str  # the whole answer: `squashed` is cut from it when first asked
    prose: bool
    masks: list[int]  # per token, the rubric's cue words it matches (cueindex.py)
    have: int  # the union of `masks`
    reach: int  # the cue words of the rubric that a key point's words may count here (see _overlap)
    parts: tuple[Unit, ...] = ()  # the two clauses of a pair
    in_domain: bool | None = None  # every word is a function word or the field's; computed on demand
    cue_hits: dict[Concept, tuple[list[str], set[int]]] = field(default_factory=dict)
    off_topic: dict[Concept, list[str]] = field(default_factory=dict)  # topicality.off_topic_words, per point
    _squashed: str | None = None
    negators: bool | None = None  # some word is a negation (claims.any_negator); computed on demand
    off_candidates: bool | None = None  # some word could be off-topic for any point; computed on demand

    @property
    def squashed(self) -> str:
        """The unit's text squashed (textmatch.squash; a pair's, its clauses' joined): only literal
        cues and working code ask, so most units never make it."""
        s = self._squashed
        if s is None:
            s = self._squashed = (self.parts[0].squashed + self.parts[1].squashed if self.parts
                                  else squash(self.answer[self.start:self.end]))
        return s


def concept_for(text: str, cues: list[str], question_stems: set[str], index: CueWords) -> Concept:
    phrases, literals = [], []
    for cue in cues:
        p = compile_phrase(cue)
        if p is None:
            continue
        if p.literal is not None:
            literals.append(p.literal)
        else:
            phrases.append(p)
    words: dict[str, tuple[str, float]] = {}
    for t in tokenize(text):
        if t.stop or len(t.text) < 2 or t.stem in words:
            continue
        words[t.stem] = (t.text, QUESTION_WORD_WEIGHT if t.stem in question_stems else 1.0)
    word_bits = [(index.bit(w, s), weight) for s, (w, weight) in words.items()]
    mask = 0
    for b, _ in word_bits:
        mask |= b
    indexed = [index_phrase(p, index) for p in phrases]
    first = 0
    for ip in indexed:
        first |= ip.bits[0]
    need = 0
    for ip in indexed:
        need |= ip.need
    return Concept(phrases, literals, words, sum(w for _, w in words.values()), indexed,
                   [(ip.need, ip, cue_has_negation(ip.phrase.source)) for ip in indexed], word_bits, mask, first,
                   need_bits=need)


@dataclass
class CompiledRubric:
    points: list[tuple[KeyPoint, Concept]]
    misconceptions: list[tuple[str, list[IndexedClaim]]]
    index: CueWords  # every word of the cues and points above, as bits
    cue_mask: int  # the bits of every (word, stem) of every key-point cue (function words and short ones aside)
    claim_index: ClaimIndex | None = None  # the misconceptions' cues, bucketed (claimindex.py)
    domain: frozenset[str] = frozenset()  # stems of the field's vocabulary (topicality.py)
    question: frozenset[str] = frozenset()  # stems of the question's content words; empty: no echo check
    subject: topicality.Subject | None = None  # what an on-topic answer engages (None: not checked)
    # the points a cue may start in, by a unit's bits among their cues' first words (stuffing.stuffed)
    starting: dict[int, list[Concept]] = field(default_factory=dict)
    first_bits: int = 0  # the union of the points' first_bits
    # (strengths, follow-up, improvements without misconceptions) by the points' statuses (offline.judge)
    feedback: dict[tuple[str, ...], tuple[list[str], str, list[str]]] = field(default_factory=dict)

    def is_cue_word(self, t: Token) -> bool:
        return bool(self.index.mask(t) & self.cue_mask)


def compile_rubric(rubric: Rubric) -> CompiledRubric:
    q = {t.stem for t in tokenize(rubric.question) if not t.stop}
    index = CueWords()
    points = [(kp, concept_for(kp.point, kp.cues, q, index)) for kp in rubric.key_points]
    # A misconception is found by its cues only: matching the words of a false claim would
    # also fire on an answer that quotes the claim to refute it. See claims.py for polarity.
    miscs = [(m.id, [index_claim(c, index) for c in map(compile_claim, m.cues) if c is not None])
             for m in rubric.misconceptions]
    cue_mask = 0
    for w in {w for kp in rubric.key_points for cue in kp.cues for w in tokenize_words(cue)
              if w not in STOPWORDS and len(w) >= 3}:
        cue_mask |= index.bit(w, stem(w))
    # Echoes are checked on authored rubrics only. A rubric derived from a reference answer (a
    # dataset's question, `score_rule: coverage`) often asks to choose between things it names
    # ("Which student's method…? Sammy"), where the right answer is made of the question's words:
    # on scientsbank-dev the check turned four such answers from 50 to 0.
    echo = frozenset(q) if rubric.score_rule != "coverage" else frozenset()
    claim_index = ClaimIndex(miscs, (b for _, c in points for ip in c.indexed for b in set(ip.bits)))
    # Code answers name identifiers, not the subject: the sandbox judges them.
    subject = topicality.subject_for(rubric) if not rubric.correctness_points else None
    first = 0
    for _, c in points:
        first |= c.first_bits
    return CompiledRubric(points, miscs, index, cue_mask, claim_index, topicality.domain_stems(rubric), echo, subject,
                          first_bits=first)


def echoes_question(unit: Unit, compiled: CompiledRubric) -> bool:
    """A clause made only of the question's own words ("Explain the k-nearest neighbours (KNN)
    algorithm.", "k nearest neighbours") restates the question: it is no evidence for any point,
    whatever cues the question's words happen to match."""
    question = compiled.question
    if not question:
        return False
    content = False
    for t in unit.tokens:  # stops at the first word of its own: most clauses have one early
        if not t.stop and len(t.text) > 1:
            if t.stem not in question:
                return False
            content = True
    return content


_TEXT = itemgetter(2)  # Token.text
_CONTENT: dict[str, str] = {}  # token text -> its stem when a content word, else "" (bounded like the word caches)


def content_key(tokens: list[Token]) -> tuple[str, ...]:
    """The stems of the content words (not function words, not one letter): what makes two clauses
    the same. Looked up per word: a clause's own loop over its tokens cost more than the rest."""
    stems = list(map(_CONTENT.get, map(_TEXT, tokens)))  # in C: no Python loop over the tokens
    if None in stems:
        stems = [s if s is not None else _content_stem(t) for t, s in zip(tokens, stems)]
    return tuple(filter(None, stems))


def _content_stem(t: Token) -> str:
    if len(_CONTENT) >= 10_000:
        _CONTENT.clear()
    s = _CONTENT[t.text] = t.stem if not t.stop and len(t.text) > 1 else ""
    return s


def answer_units(answer: str, spans: list[Clause], masks: list[list[int]], index: CueWords) -> list[Unit]:
    singles: list[Unit] = []
    seen: set[tuple[str, ...]] = set()
    for c, m in zip(spans, masks):
        key = content_key(c.tokens)
        if not key or key in seen:
            continue  # repeated clauses count once
        seen.add(key)
        singles.append(make_unit(answer, c, is_prose(c), m, index))
    # Two adjacent prose clauses may state one point together; so may the two sides of a colon
    # when either is prose ("X is overfitting: near-zero training error, far worse validation";
    # "Walk-forward validation: train on earlier periods, validate on the next").
    pairs = [pair_units(answer, a, b) for a, b in zip(singles, singles[1:])
             if (a.prose and b.prose) or (COLON_PAIRS and (a.prose or b.prose)
                                          and answer[a.end:b.start].strip().startswith(":"))]
    return singles + pairs


def make_unit(answer: str, c: Clause, prose: bool, masks: list[int], index: CueWords) -> Unit:
    # A key point's word counts when some word here has its stem, or a content word matches it
    # (CueWords.reach, remembered per word). The union runs in C: a Python loop cost more than the rest.
    return Unit(c.start, c.end, c.tokens, answer, prose, masks, reduce(or_, masks, 0),
                index.reach(c.tokens))


def pair_units(answer: str, a: Unit, b: Unit) -> Unit:
    return Unit(a.start, b.end, a.tokens + b.tokens, answer, True, a.masks + b.masks,
                 a.have | b.have, a.reach | b.reach, (a, b))


_NEGATOR: dict[str, bool] = {}  # token text -> is_negator (a function of the text), bounded like the word caches


def any_negator(tokens: list[Token]) -> bool:
    """any(map(is_negator, tokens)), each word's answer remembered and looked up in C: no cue in
    tokens without one can be negated (negated_cue), and most clauses have none."""
    flags = list(map(_NEGATOR.get, map(_TEXT, tokens)))
    if True in flags:
        return True
    if None not in flags:
        return False
    if len(_NEGATOR) >= 10_000:
        _NEGATOR.clear()
    return any([_NEGATOR.setdefault(t.text, is_negator(t)) for t, f in zip(tokens, flags) if f is None])


def has_negator(unit: Unit) -> bool:
    """Whether some word of the unit is a negation (a pair: of either clause), found once."""
    v = unit.negators
    if v is None:
        v = unit.negators = (has_negator(unit.parts[0]) or has_negator(unit.parts[1]) if unit.parts
                             else any_negator(unit.tokens))
    return v


def cue_rows(concept: Concept, have: int) -> list[tuple[int, IndexedPhrase, bool]]:
    """The point's word cues whose needed words are all among `have` (a unit's bits): the only ones
    that can match there, in the rubric's order. Remembered by the bits that decide it."""
    key = have & concept.need_bits
    rows = concept.possible.get(key)
    if rows is None:  # a cue needing a bit the unit lacks cannot match (most cues)
        if len(concept.possible) >= POSSIBLE_MAX:
            concept.possible.clear()
        rows = concept.possible[key] = [row for row in concept.cue_table if row[0] & key == row[0]]
    return rows


def cue_hits(concept: Concept, unit: Unit) -> tuple[list[str], set[int]]:
    """Distinct cues found in the unit, and the token indices they used (asked up to three times
    per unit and point: judged, topicality, stuffing; found once)."""
    known = unit.cue_hits.get(concept)
    if known is not None:
        return known
    hits: list[str] = []
    used: set[int] = set()
    have = unit.have
    if have & concept.first_bits:  # else no word cue starts here
        tokens, masks = unit.tokens, unit.masks
        for need, ip, negates in cue_rows(concept, have):
            if len(ip.bits) == 1:  # a one-word cue: its first token (find_indexed's walk, unrolled)
                first = ip.bits[0]
                i = 0
                while not masks[i] & first:
                    i += 1
                at = (i, i)
            else:
                at = find_indexed(ip, tokens, masks, have)
                if at is None:
                    continue
            if at[0] and not negates and has_negator(unit) and negated_cue(tokens, at[0], False):
                continue  # "does not use a vote" is no evidence of a vote
            hits.append(ip.phrase.source)
            used.update(range(at[0], at[1] + 1))
    if concept.literals:
        hits.extend(lit for lit in concept.literals if lit in unit.squashed)
    unit.cue_hits[concept] = (hits, used)
    return hits, used
