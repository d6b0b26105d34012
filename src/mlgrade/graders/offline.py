"""The offline grader: judges an answer against a rubric's key points with no network and no key.

For each key point it looks for the rubric's cue phrases and for the content words of the point
itself (stemmed, typo-tolerant), clause by clause, and quotes the best clause as evidence, so
evidence is always an exact substring of the answer. Scoring stays in scoring.py.

Keyword stuffing is resisted structurally rather than by a penalty:
- a clause only counts fully when it reads as prose (a verb and function words, see
  `textmatch.is_prose`); all non-prose fragments of an answer together can support at most
  one key point, so a list of every right term earns one point at best;
- a "sentence" made of cue terms glued with "and"/"is" (few words of its own) is treated as a list,
  unless its comma-separated parts make statements with verbs of their own (a dense compound
  sentence: "X dominates the distance, and for gradient descent it improves conditioning");
- repeated clauses count once, and a clause made only of the question's words counts not at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..models import Assessment, CodeTestResult, Judgment, KeyPoint, MisconceptionFound, Rubric
from . import topicality
from .injection import CLAIM as INJECTION_CLAIM, MISCONCEPTION_ID as INJECTION_ID, find_directives
from .claims import IndexedClaim, asserted_claims, compile_claim, cue_has_negation, index_claim, negated_cue
from .cueindex import CueWords, IndexedPhrase, find_indexed, index_phrase
from .textmatch import (
    STOPWORDS, Clause, Phrase, Token, clauses, compile_phrase, is_prose, is_verbish, list_items, squash, stem,
    tokenize, tokenize_words,
)

OFFLINE_VERSION = "offline-v4"
# Words of the question say little about the answer ("what is a prototype?" → "a prototype is…").
QUESTION_WORD_WEIGHT = 0.3
# Thresholds on the share of a key point's own words found in one clause (or two adjacent ones).
# A point with cues is judged mainly by its cues, so its words must overlap more to count alone;
# a point without cues (derived rubrics) is judged by its words only. Tuned on mohler-dev.
COVERED_OVERLAP = 0.6
PARTIAL_OVERLAP = 0.3
COVERED_OVERLAP_NO_CUES = 0.5
PARTIAL_OVERLAP_NO_CUES = 0.2
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
# Pair a prose clause with the fragment its colon introduces.
COLON_PAIRS = True
# A fragment answer this short with this few items is a direct answer ("the main function"), not a list.
DIRECT_MAX_TOKENS = 12
DIRECT_MAX_ITEMS = 2


@dataclass
class _Concept:
    """What evidence for one key point (or misconception) looks like."""

    phrases: list[Phrase]
    literals: list[str]
    words: dict[str, tuple[str, float]]  # stem -> (a surface form, weight)
    total: float
    indexed: list[IndexedPhrase]  # the phrases, with their words' bits in the rubric's CueWords
    word_bits: list[tuple[int, float]]  # each of `words` as (bit, weight), in order
    word_mask: int  # the union of those bits
    first_bits: int  # the bits of the phrases' first words: a unit with none of them has no cue


@dataclass
class _Unit:
    """A quotable stretch of the answer: one clause, or two adjacent prose clauses."""

    start: int
    end: int
    tokens: list[Token]
    squashed: str
    prose: bool
    masks: list[int]  # per token, the rubric's cue words it matches (cueindex.py)
    have: int  # the union of `masks`
    reach: int  # the cue words of the rubric that a key point's words may count here (see _overlap)
    parts: tuple[_Unit, ...] = ()  # the two clauses of a pair
    in_domain: bool | None = None  # every word is a function word or the field's; computed on demand
    cue_hits: dict[int, tuple[list[str], set[int]]] = field(default_factory=dict)  # by id(concept)


@dataclass
class _Evidence:
    status: str
    strength: float
    unit: _Unit | None
    note: str
    off_topic: bool = False  # the clause's other words are mostly outside the field
    off_words: list[str] = field(default_factory=list)


def _concept(text: str, cues: list[str], question_stems: set[str], index: CueWords) -> _Concept:
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
    return _Concept(phrases, literals, words, sum(w for _, w in words.values()), indexed, word_bits, mask, first)


@dataclass
class _CompiledRubric:
    points: list[tuple[KeyPoint, _Concept]]
    misconceptions: list[tuple[str, list[IndexedClaim]]]
    index: CueWords  # every word of the cues and points above, as bits
    cue_mask: int  # the bits of every (word, stem) of every key-point cue (function words and short ones aside)
    domain: frozenset[str] = frozenset()  # stems of the field's vocabulary (topicality.py)
    question: frozenset[str] = frozenset()  # stems of the question's content words; empty: no echo check

    def is_cue_word(self, t: Token) -> bool:
        return bool(self.index.mask(t) & self.cue_mask)


def _compile(rubric: Rubric) -> _CompiledRubric:
    q = {t.stem for t in tokenize(rubric.question) if not t.stop}
    index = CueWords()
    points = [(kp, _concept(kp.point, kp.cues, q, index)) for kp in rubric.key_points]
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
    return _CompiledRubric(points, miscs, index, cue_mask, topicality.domain_stems(rubric), echo)


def _echo(unit: _Unit, compiled: _CompiledRubric) -> bool:
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


def _units(answer: str, spans: list[Clause], masks: list[list[int]], index: CueWords) -> list[_Unit]:
    singles: list[_Unit] = []
    seen: set[tuple[str, ...]] = set()
    for c, m in zip(spans, masks):
        key = tuple([t.stem for t in c.tokens if not t.stop and len(t.text) > 1])  # its content words
        if not key or key in seen:
            continue  # repeated clauses count once
        seen.add(key)
        singles.append(_make_unit(answer, c, is_prose(c), m, index))
    # Two adjacent prose clauses may state one point together; so may the two sides of a colon
    # when either is prose ("X is overfitting: near-zero training error, far worse validation";
    # "Walk-forward validation: train on earlier periods, validate on the next").
    pairs = [_pair(answer, a, b) for a, b in zip(singles, singles[1:])
             if (a.prose and b.prose) or (COLON_PAIRS and (a.prose or b.prose)
                                          and answer[a.end:b.start].strip().startswith(":"))]
    return singles + pairs


def _make_unit(answer: str, c: Clause, prose: bool, masks: list[int], index: CueWords) -> _Unit:
    have = reach = 0
    stem_bits = index.stem_bits
    for t, m in zip(c.tokens, masks):
        have |= m
        # a key point's word counts when some word here has its stem, or a content word matches it
        reach |= stem_bits(t.stem) if t.stop else stem_bits(t.stem) | m
    return _Unit(c.start, c.end, c.tokens, squash(answer[c.start:c.end]), prose, masks, have, reach)


def _pair(answer: str, a: _Unit, b: _Unit) -> _Unit:
    return _Unit(a.start, b.end, a.tokens + b.tokens, a.squashed + b.squashed, True, a.masks + b.masks,
                 a.have | b.have, a.reach | b.reach, (a, b))


def _cue_hits(concept: _Concept, unit: _Unit) -> tuple[list[str], set[int]]:
    """Distinct cues found in the unit, and the token indices they used (asked up to three times
    per unit and point: judged, topicality, stuffing; found once)."""
    known = unit.cue_hits.get(id(concept))
    if known is not None:
        return known
    hits: list[str] = []
    used: set[int] = set()
    have = unit.have
    if not (have & concept.first_bits or concept.literals):
        unit.cue_hits[id(concept)] = (hits, used)
        return hits, used  # no cue starts here
    for ip in concept.indexed:
        if have & ip.need != ip.need:
            continue  # some word of the cue is not in the unit
        at = find_indexed(ip, unit.tokens, unit.masks, have)
        if at is None or negated_cue(unit.tokens, at[0], cue_has_negation(ip.phrase.source)):
            continue  # "does not use a vote" is no evidence of a vote
        hits.append(ip.phrase.source)
        used.update(range(at[0], at[1] + 1))
    if concept.literals:
        hits.extend(lit for lit in concept.literals if lit in unit.squashed)
    unit.cue_hits[id(concept)] = (hits, used)
    return hits, used


def _overlap(concept: _Concept, unit: _Unit) -> float:
    if not concept.total:
        return 0.0
    # A point's word counts when the unit has its stem or a content word matching it (word_matches):
    # exactly the bits of `reach`. Summed in the words' order, so the float is the same every time.
    found = unit.reach & concept.word_mask
    got = 0.0
    if found:
        for b, weight in concept.word_bits:
            if found & b:
                got += weight
    return got / concept.total


def _judge_unit(concept: _Concept, unit: _Unit) -> _Evidence:
    hits, _ = _cue_hits(concept, unit)
    ov = _overlap(concept, unit)
    distinct = len(set(hits))
    has_cues = bool(concept.phrases or concept.literals)
    covered_at = COVERED_OVERLAP if has_cues else COVERED_OVERLAP_NO_CUES
    partial_at = PARTIAL_OVERLAP if has_cues else PARTIAL_OVERLAP_NO_CUES
    if ov >= covered_at or (distinct and ov >= partial_at) or distinct >= 2:
        status = "covered"
    elif distinct or ov >= partial_at:
        status = "partial"
    else:
        return _Evidence("missing", 0.0, None, "")
    strength = ov + 0.5 * min(distinct, 3)
    cue_note = f"cues: {', '.join(repr(h) for h in hits[:3])}; " if hits else ""
    return _Evidence(status, strength, unit, f"{cue_note}{ov:.0%} of the point's words")


def _topical(ev: _Evidence, concept: _Concept, unit: _Unit, compiled: _CompiledRubric) -> _Evidence:
    """Mark a clause whose other words come from outside the field (off_topic: a suspect); with
    OFF_TOPIC_MIN_WORDS such words it earns partial at most on its own. A pair of clauses is
    judged by its clauses (the on-topic one still counts alone)."""
    off: list[str] = []
    for part in unit.parts or (unit,):
        if part.in_domain is None:
            part.in_domain = all(t.stop or t.stem in compiled.domain for t in part.tokens)
        if part.in_domain:
            continue  # the common case, and cheap: every word is the field's
        _, used = _cue_hits(concept, part)
        off += topicality.off_topic_words(part.tokens, used, set(concept.words), compiled.domain)
    if not off:
        return ev
    demote = len(off) >= topicality.OFF_TOPIC_MIN_WORDS
    status = "partial" if demote and ev.status == "covered" else ev.status
    note = f"{ev.note}; {topicality.MARKER} {', '.join(off[:3])}" if demote else ev.note
    return _Evidence(status, ev.strength, ev.unit, note, True, off)


def _statements(answer: str, unit: _Unit, compiled: _CompiledRubric) -> int:
    """How many comma-separated parts of the clause make a statement of their own: a verb that is
    neither a function word, nor a cue word, nor one an earlier part already used. "k-NN matters
    because X dominates the distance, and for gradient descent it improves conditioning" makes two;
    "it is knn and svm, it is tree and invariant" makes none (its verbs are "is" and the cues), and
    "knn matters, tree matters, pca matters" one (a template repeats its verb)."""
    count, seen, new = 0, set(), set()
    for i, t in enumerate(unit.tokens):
        if i and "," in answer[unit.tokens[i - 1].end:t.start]:
            count += bool(new)
            seen |= new
            new = set()
        if is_verbish(t) and not t.stop and t.stem not in seen and not compiled.is_cue_word(t):
            new.add(t.stem)
    return count + bool(new)


def _stuffed(unit: _Unit, compiled: _CompiledRubric, answer: str) -> bool:
    """A prose-looking clause that is really a list: it names several key points but has few
    words of its own besides the cue terms, and is not a compound of statements."""
    if sum(bool(unit.have & c.first_bits or c.literals) for _, c in compiled.points) < STUFFED_MIN_POINTS:
        return False  # not even that many points have a cue starting here
    touched, in_cues = 0, set()
    for _, concept in compiled.points:
        hits, used = _cue_hits(concept, unit)
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
    content = [t for t in unit.tokens if not t.stop and len(t.text) > 1]
    free = [t for t in content if not compiled.is_cue_word(t)]
    # A dense compound sentence names several points because it makes several statements, each
    # with a verb of its own; a template that varies only its cue terms repeats its own words.
    if _statements(answer, unit, compiled) >= COMPOUND_MIN_STATEMENTS \
            and len({t.stem for t in free}) >= COMPOUND_MIN_DISTINCT * len(free):
        return False
    return len(free) / max(1, len(content)) < STUFFED_MAX_FREE_SHARE


def _restates(unit: _Unit, compiled: _CompiledRubric) -> bool:
    """The clause is a key point in (nearly) its own words and order, with a verb: the feedback
    shows a missed point's text, and an answer that then states it must earn it as a statement,
    however terse the point's sentence is. A list of the same terms in another order is not."""
    seq = [t.stem for t in unit.tokens if not t.stop and len(t.text) > 1]
    if not any(map(is_verbish, unit.tokens)):
        return False
    for _, concept in compiled.points:
        point = list(concept.words)
        if not point or len(set(seq) - concept.words.keys()) > RESTATES_MAX_OTHER * len(set(seq)):
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


def _working_code(answer: str, facts: list[CodeTestResult] | None) -> str:
    """The answer's code, squashed, when running it passed at least one of the rubric's tests."""
    if not facts or not any(f.status == "passed" for f in facts):
        return ""
    from ..code.extract import extract_code

    return squash(extract_code(answer) or "")


def _direct_answer(answer: str) -> bool:
    return len(tokenize_words(answer)) <= DIRECT_MAX_TOKENS and list_items(answer) <= DIRECT_MAX_ITEMS


_RANK = {"missing": 0, "partial": 1, "covered": 2}


def _better(a: _Evidence, b: _Evidence) -> bool:
    return (_RANK[a.status], a.strength) > (_RANK[b.status], b.strength)


class OfflineGrader:
    """Rubric matching without a model. `assess` is the Grader protocol; `judge` is the same,
    synchronous, for batch loops that want no event loop per answer."""

    name = "offline"
    model = OFFLINE_VERSION

    def __init__(self) -> None:
        self._compiled: dict[str, _CompiledRubric] = {}

    def prompt_hash(self, rubric: Rubric) -> str:
        """Changes whenever the offline algorithm or the rubric changes: the batch cache key."""
        from ..rubrics import rubric_hash

        return hashlib.sha256(f"{OFFLINE_VERSION}:{rubric_hash(rubric)}".encode()).hexdigest()[:16]

    def _rubric(self, rubric: Rubric) -> _CompiledRubric:
        from ..rubrics import rubric_hash

        # by content: a bank loaded again (a new object per rubric) reuses the compiled form
        key = f"{rubric.id}:{rubric_hash(rubric)}"
        compiled = self._compiled.get(key)
        if compiled is None:
            if len(self._compiled) > 512:
                self._compiled.clear()
            compiled = self._compiled[key] = _compile(rubric)
        return compiled

    async def assess(self, rubric: Rubric, answer: str, *, facts: list[CodeTestResult] | None = None) -> Assessment:
        return self.judge(rubric, answer, facts=facts)

    def judge(self, rubric: Rubric, answer: str, *, facts: list[CodeTestResult] | None = None) -> Assessment:
        compiled = self._rubric(rubric)
        spans = clauses(answer)
        masks = [compiled.index.masks(c.tokens) for c in spans]
        claims = asserted_claims(compiled.misconceptions, spans, answer, masks)
        # A clause asserting one of the rubric's misconceptions is no evidence for any key point:
        # "prediction is fast" must not count toward "prediction is expensive".
        wrong = [(spans[k].start, spans[k].end) for _, k in claims]
        directives = find_directives(answer)  # text addressed to the grader earns nothing either
        wrong += [(d.start, d.end) for d in directives]
        units = [u for u in _units(answer, spans, masks, compiled.index)
                 if not any(u.start < e and s < u.end for s, e in wrong) and not _echo(u, compiled)]
        code = _working_code(answer, facts)
        for u in units:
            if code and u.squashed and u.squashed in code:
                u.prose = True  # code that runs and passes tests demonstrates its idea: it is not a keyword list
            elif u.prose and _stuffed(u, compiled, answer) and not _restates(u, compiled):
                u.prose = False
            elif not u.prose and _restates(u, compiled):
                u.prose = True
        best_prose: dict[str, _Evidence] = {}
        best_fragment: dict[str, _Evidence] = {}
        for kp, concept in compiled.points:
            bp = bf = _Evidence("missing", 0.0, None, "")
            for u in units:
                if not (u.reach & concept.word_mask or u.have & concept.first_bits or concept.literals):
                    continue  # neither a cue nor a word of the point: missing, which never wins
                ev = _judge_unit(concept, u)
                if ev.status != "missing":
                    ev = _topical(ev, concept, u, compiled)
                if u.prose and _better(ev, bp):
                    bp = ev
                elif not u.prose and _better(ev, bf):
                    bf = ev
            best_prose[kp.id], best_fragment[kp.id] = bp, bf

        # All non-prose fragments together support at most one key point: the one they show best
        # among those the prose did not already establish.
        gains = [(kp.weight * (_RANK[best_fragment[kp.id].status] - _RANK[best_prose[kp.id].status]),
                  best_fragment[kp.id].strength, kp.id) for kp, _ in compiled.points]
        gains = [g for g in gains if g[0] > 0]
        fragment_pick = max(gains)[2] if gains else None
        if fragment_pick and best_fragment[fragment_pick].status == "covered" \
                and not _direct_answer(answer):
            # A list of terms shows recognition, not explanation: half credit at most.
            best_fragment[fragment_pick].status = "partial"

        chosen = {kp.id: best_fragment[kp.id] if kp.id == fragment_pick else best_prose[kp.id]
                  for kp, _ in compiled.points}
        matched = [ev for ev in chosen.values() if ev.status != "missing"]
        off = sum(ev.off_topic for ev in matched)
        if off >= topicality.OFF_TOPIC_ANSWER_MIN and off >= topicality.OFF_TOPIC_ANSWER_SHARE * len(matched):
            # Most of what matched sits in sentences about something else: stuffing, not an answer.
            for ev in matched:
                ev.status = "partial"
                if ev.off_topic and topicality.MARKER not in ev.note:
                    ev.note += f"; {topicality.MARKER} {', '.join(ev.off_words[:3])}"
        judgments: list[Judgment] = []
        for kp, _ in compiled.points:
            ev = chosen[kp.id]
            if ev.status == "missing" or ev.unit is None:
                judgments.append(Judgment(key_point=kp.id, status="missing", comment="not found in the answer"))
                continue
            where = "in a full sentence" if ev.unit.prose else "only in a fragment or list"
            judgments.append(Judgment(key_point=kp.id, status=ev.status, evidence=answer[ev.unit.start:ev.unit.end],
                                      comment=f"{ev.note} ({where})"))

        found = [MisconceptionFound(id=mid, claim=m.claim if (m := rubric.misconception(mid)) else "",
                                    evidence=spans[k].span(answer)) for mid, k in claims]
        if directives:
            found.append(MisconceptionFound(id=INJECTION_ID, claim=INJECTION_CLAIM,
                                            evidence=directives[0].quote(answer)))
        return Assessment(
            judgments=judgments, misconceptions=found,
            strengths=strengths_for(rubric, judgments), improvements=improvements_for(rubric, judgments, found),
            follow_up=_follow_up(rubric, judgments), model=OFFLINE_VERSION, prompt_hash=self.prompt_hash(rubric),
        )


# --------------------------------------------------------------------------- feedback from rubric text


def _lower_first(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def strengths_for(rubric: Rubric, judgments: list[Judgment]) -> list[str]:
    """Up to three covered key points, heaviest first (grading.finalize calls it again once the
    code's run has decided the correctness points)."""
    status = {j.key_point: j.status for j in judgments}
    covered = sorted((kp for kp in rubric.key_points if status[kp.id] == "covered"), key=lambda k: -k.weight)
    return [f"Covered: {kp.point.strip()}" for kp in covered[:3]]


def improvements_for(rubric: Rubric, judgments: list[Judgment], found: list[MisconceptionFound]) -> list[str]:
    """Misconceptions to correct, then missing and partial key points (essential first), up to four."""
    status = {j.key_point: j.status for j in judgments}
    out = ["Answer the question only: text addressed to the grader earns nothing and makes the answer poor."
           if m.id == INJECTION_ID else f"Correct this: it is not true that {_lower_first(m.claim)}."
           for m in found if m.claim]
    todo = sorted((kp for kp in rubric.key_points if status[kp.id] != "covered"),
                  key=lambda k: (status[k.id] != "missing", not k.essential, -k.weight))
    for kp in todo:
        verb = "Add" if status[kp.id] == "missing" else "Develop"
        tag = " (essential)" if kp.essential and status[kp.id] == "missing" else ""
        out.append(f"{verb}{tag}: {kp.point.strip()}")
    return out[:4]


_STOP_STEMS = frozenset(stem(w) for w in STOPWORDS)


def _follow_up(rubric: Rubric, judgments: list[Judgment]) -> str:
    """The follow-up question closest to the most important point the answer missed."""
    questions = [f.question for f in rubric.follow_ups]
    if not questions:
        return ""
    status = {j.key_point: j.status for j in judgments}
    missed = sorted((kp for kp in rubric.key_points if status[kp.id] != "covered"), key=lambda k: -k.weight)
    if not missed:
        return questions[0]
    target = {stem(w) for w in missed[0].point.split()} - _STOP_STEMS
    return max(questions, key=lambda f: len(target & {stem(w.strip("?,.")) for w in f.split()}))
