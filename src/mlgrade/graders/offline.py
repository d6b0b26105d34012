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
- repeated clauses count once, and a clause made only of the question's words counts not at all;
- an answer that is mostly cue terms with few words of its own, however long and however built into
  sentences, is a keyword list as a whole (`stuffing.keyword_list_reason`): all fragments, and held.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter, not_

from ..models import Assessment, CodeTestResult, Judgment, MisconceptionFound, Rubric, constructed
from . import topicality
from .anaphora import claim_hits
from ..scoring import KEYWORD_LIST, OFF_TOPIC as OFF_TOPIC_ID
from .injection import CLAIM as INJECTION_CLAIM, MISCONCEPTION_ID as INJECTION_ID, find_directives
from .offline_units import CompiledRubric, Concept, Unit, answer_units, compile_rubric, cue_hits, cue_rows, echoes_question
from .rubric_feedback import follow_up_for, improvements_for, strengths_for
from .stuffing import keyword_list_reason, restates, stuffed
from .textmatch import clauses, list_items, squash, tokenize, tokenize_words

OFFLINE_VERSION = "offline-v4"
# Thresholds on the share of a key point's own words found in one clause (or two adjacent ones).
# A point with cues is judged mainly by its cues, so its words must overlap more to count alone;
# a point without cues (derived rubrics) is judged by its words only. Tuned on mohler-dev.
COVERED_OVERLAP = 0.6
PARTIAL_OVERLAP = 0.3
COVERED_OVERLAP_NO_CUES = 0.5
PARTIAL_OVERLAP_NO_CUES = 0.2
# A fragment answer this short with this few items is a direct answer ("the main function"), not a list.
DIRECT_MAX_TOKENS = 12
DIRECT_MAX_ITEMS = 2
OVERLAPS_MAX = 4_096  # remembered overlaps per key point (Concept.overlaps)
FEEDBACK_MAX = 1_024  # remembered feedback per rubric (CompiledRubric.feedback)
_STEM, _STOP = itemgetter(3), itemgetter(4)  # Token.stem, Token.stop


@dataclass(slots=True)
class _Evidence:
    status: str
    strength: float
    unit: Unit | None
    hits: list[str] = field(default_factory=list)  # the cues found
    overlap: float = 0.0  # the share of the point's words found
    off_topic: bool = False  # the clause's other words are mostly outside the field
    off_words: list[str] = field(default_factory=list)
    marks: str = ""  # the off-topic marker, once the clause or the answer is judged off-topic

    def note(self) -> str:
        # written for the chosen evidence only: most candidates lose, and their notes were half the loop
        cue_note = f"cues: {', '.join(repr(h) for h in self.hits[:3])}; " if self.hits else ""
        return f"{cue_note}{self.overlap:.0%} of the point's words{self.marks}"


def _overlap(concept: Concept, unit: Unit) -> float:
    if not concept.total:
        return 0.0
    # A point's word counts when the unit has its stem or a content word matching it (word_matches):
    # exactly the bits of `reach`. Summed in the words' order, so the float is the same every time.
    found = unit.reach & concept.word_mask
    known = concept.overlaps.get(found)
    if known is not None:
        return known
    got = 0.0
    if found:
        for b, weight in concept.word_bits:
            if found & b:
                got += weight
    if len(concept.overlaps) >= OVERLAPS_MAX:
        concept.overlaps.clear()
    share = concept.overlaps[found] = got / concept.total
    return share


def _thresholds(concept: Concept) -> tuple[float, float]:
    """The overlap at which a point is covered, and partial, by its words alone."""
    if concept.phrases or concept.literals:
        return COVERED_OVERLAP, PARTIAL_OVERLAP
    return COVERED_OVERLAP_NO_CUES, PARTIAL_OVERLAP_NO_CUES


_CUE_BONUS, _CUES_COUNTED = 0.5, 3  # each distinct cue adds to a unit's strength, the first three only
_MAX_CUE_BONUS = _CUE_BONUS * _CUES_COUNTED  # 1.5 exactly, the same float as the bonus of three cues


def _judge_unit(concept: Concept, unit: Unit, covered_at: float, partial_at: float, ov: float, cues: bool
                ) -> tuple[str, float, list[str], float] | None:
    """The unit's evidence for the point (status, strength, cues, overlap); None when it shows none
    (missing, which never wins). `ov`: its _overlap; `cues`: some cue of the point may match here."""
    # no cue can match here (the common case: the unit has only some of the point's words)
    hits = cue_hits(concept, unit)[0] if cues else []
    distinct = len(set(hits))
    if ov >= covered_at or (distinct and ov >= partial_at) or distinct >= 2:
        status = "covered"
    elif distinct or ov >= partial_at:
        status = "partial"
    else:
        return None
    return status, ov + _CUE_BONUS * min(distinct, _CUES_COUNTED), hits, ov


def _topical(ev: _Evidence, concept: Concept, unit: Unit, compiled: CompiledRubric) -> _Evidence:
    """Mark a clause whose other words come from outside the field (off_topic: a suspect); with
    OFF_TOPIC_MIN_WORDS such words it earns partial at most on its own. A pair of clauses is
    judged by its clauses (the on-topic one still counts alone)."""
    off: list[str] = []
    for part in unit.parts or (unit,):
        if part.in_domain is None:  # every content word's stem is the field's (a set test, in C)
            toks = part.tokens
            part.in_domain = compiled.domain.issuperset(compress(map(_STEM, toks), map(not_, map(_STOP, toks))))
        if part.in_domain:
            continue  # the common case, and cheap: every word is the field's
        if part.off_candidates is None:
            # off_topic_words counts only such words (outside the field, not a function word, alphabetic,
            # over two letters): a clause with none is off-topic for no point (often its only outside
            # words are numbers or single letters)
            part.off_candidates = any(not t.stop and len(t.text) > 2 and t.text.isalpha()
                                      and t.stem not in compiled.domain for t in part.tokens)
        if not part.off_candidates:
            continue
        words = part.off_topic.get(concept)
        if words is None:  # a clause is asked again for each pair it is part of
            _, used = cue_hits(concept, part)
            words = part.off_topic[concept] = topicality.off_topic_words(part.tokens, used, concept.words.keys(),
                                                                         compiled.domain)
        off += words
    if not off:
        return ev
    if len(off) >= topicality.OFF_TOPIC_MIN_WORDS:
        ev.status = "partial" if ev.status == "covered" else ev.status
        ev.marks = f"; {topicality.MARKER} {', '.join(off[:3])}"
    ev.off_topic, ev.off_words = True, off
    return ev


def _working_code(answer: str, facts: list[CodeTestResult] | None) -> str:
    """The answer's code, squashed, when running it passed at least one of the rubric's tests."""
    if not facts or not any(f.status == "passed" for f in facts):
        return ""
    from ..code.extract import extract_code

    return squash(extract_code(answer) or "")


def _squashed_answer(answer: str) -> str | None:
    """The answer squashed, in which the squashed text of each of its clauses occurs (so a literal
    cue missing here is in none of them); None where that may fail: lower() turns a capital sigma
    into a final or a medial one by the letter after it, which a clause's end can cut off."""
    return squash(answer) if "\u03a3" not in answer else None


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
        self._compiled: dict[str, CompiledRubric] = {}
        self._prompt_hashes: dict[str, str] = {}  # by rubric_hash

    def prompt_hash(self, rubric: Rubric) -> str:
        """Changes whenever the offline algorithm or the rubric changes: the batch cache key."""
        from ..rubrics import rubric_hash

        content = rubric_hash(rubric)
        known = self._prompt_hashes.get(content)
        if known is None:
            if len(self._prompt_hashes) > 512:
                self._prompt_hashes.clear()
            known = self._prompt_hashes[content] = hashlib.sha256(f"{OFFLINE_VERSION}:{content}".encode()).hexdigest()[:16]
        return known

    def _rubric(self, rubric: Rubric) -> CompiledRubric:
        from ..rubrics import rubric_hash

        # by content: a bank loaded again (a new object per rubric) reuses the compiled form
        key = f"{rubric.id}:{rubric_hash(rubric)}"
        compiled = self._compiled.get(key)
        if compiled is None:
            if len(self._compiled) > 512:
                self._compiled.clear()
            compiled = self._compiled[key] = compile_rubric(rubric)
        return compiled

    async def assess(self, rubric: Rubric, answer: str, *, facts: list[CodeTestResult] | None = None) -> Assessment:
        return self.judge(rubric, answer, facts=facts)

    def judge(self, rubric: Rubric, answer: str, *, facts: list[CodeTestResult] | None = None) -> Assessment:
        compiled = self._rubric(rubric)
        tokens = tokenize(answer)
        spans = clauses(answer, tokens)
        masks = [compiled.index.masks(c.tokens) for c in spans]
        claims = claim_hits(compiled.misconceptions, spans, answer, masks, compiled.claim_index)
        # A clause asserting one of the rubric's misconceptions is no evidence for any key point:
        # "prediction is fast" must not count toward "prediction is expensive".
        wrong = [(spans[h.clause].start, spans[h.clause].end) for h in claims]
        directives = find_directives(answer)  # text addressed to the grader earns nothing either
        wrong += [(d.start, d.end) for d in directives]
        units = [u for u in answer_units(answer, spans, masks, compiled.index)
                 if not (wrong and any(u.start < e and s < u.end for s, e in wrong)) and not echoes_question(u, compiled)]
        code = _working_code(answer, facts)
        # a whole answer that is a keyword list: every clause of it counts as a fragment
        listed = "" if code else keyword_list_reason(spans, masks, compiled, answer)
        for u in units:
            if listed:
                u.prose = False
            elif code and u.squashed and u.squashed in code:
                u.prose = True  # code that runs and passes tests demonstrates its idea: it is not a keyword list
            elif u.prose and stuffed(u, compiled, answer) and not restates(u, compiled):
                u.prose = False
            elif not u.prose and restates(u, compiled):
                u.prose = True
        best_prose: dict[str, _Evidence] = {}
        best_fragment: dict[str, _Evidence] = {}
        squashed = _squashed_answer(answer) if any(c.literals for _, c in compiled.points) else None
        for kp, concept in compiled.points:
            bp = bf = _Evidence("missing", 0.0, None)
            covered_at, partial_at = _thresholds(concept)
            first_bits = concept.first_bits
            # a literal cue is in a clause only if it is in the whole answer (a pair's text skips the
            # gap between its clauses: there it is always sought)
            literals = bool(concept.literals) and (squashed is None or any(map(squashed.__contains__, concept.literals)))
            pair_literals = bool(concept.literals)
            word_mask, total, overlaps = concept.word_mask, concept.total, concept.overlaps
            need_bits, possible = concept.need_bits, concept.possible
            for u in units:
                # a word cue can match only where all its needed words are (cue_rows, remembered in
                # `possible`): most units holding some cue's first word lack the rest, and need no
                # search for cue hits
                if literals or (pair_literals and u.parts):
                    cues = True
                elif u.have & first_bits:
                    rows = possible.get(u.have & need_bits)
                    cues = bool(rows if rows is not None else cue_rows(concept, u.have))
                else:
                    cues = False
                if not cues:
                    # No cue can match here, so the point's words alone decide; each weighs at most
                    # 1, so with too few of them the unit is missing (which never wins) for sure.
                    found = u.reach & word_mask
                    if not found or found.bit_count() / total < partial_at:
                        continue
                best = bp if u.prose else bf
                ov = overlaps.get(u.reach & word_mask)  # _overlap, remembered (asked ~30 times an answer)
                if ov is None:
                    ov = _overlap(concept, u)
                # At best covered with 3 cues (strength ov + 1.5): when that cannot beat the point's
                # best so far, the unit's cue hits (the costly part, most of them a pair's) are not sought.
                if cues and best.status == "covered" and ov + _MAX_CUE_BONUS <= best.strength:
                    continue
                judged = _judge_unit(concept, u, covered_at, partial_at, ov, cues)
                if judged is None:
                    continue
                # the topicality check can only lower a status: evidence that cannot win skips it
                if (_RANK[judged[0]], judged[1]) <= (_RANK[best.status], best.strength):
                    continue
                ev = _topical(_Evidence(judged[0], judged[1], u, judged[2], judged[3]), concept, u, compiled)
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
                if ev.off_topic and topicality.MARKER not in ev.note():
                    ev.marks += f"; {topicality.MARKER} {', '.join(ev.off_words[:3])}"
        judgments: list[Judgment] = []
        for kp, _ in compiled.points:
            ev = chosen[kp.id]
            # claimed_status as evidence.verify_judgments sets it: a judgment whose quote checks out is then kept as is
            if ev.status == "missing" or ev.unit is None:
                judgments.append(constructed(Judgment, key_point=kp.id, status="missing",
                                             comment="not found in the answer", claimed_status="missing"))
                continue
            where = "in a full sentence" if ev.unit.prose else "only in a fragment or list"
            judgments.append(constructed(Judgment, key_point=kp.id, status=ev.status,
                                         evidence=answer[ev.unit.start:ev.unit.end], comment=f"{ev.note()} ({where})",
                                         claimed_status=ev.status))

        found = [MisconceptionFound(id=h.id, claim=m.claim if (m := rubric.misconception(h.id)) else "",
                                    evidence=answer[h.start:h.end]) for h in claims]
        # An answer to another question: a judgment about the whole answer, so it quotes nothing.
        # (text addressed to the grader aside; a wrong claim about the subject still engages it)
        reason = ""
        if compiled.subject is not None and not code:
            kept = [c for c in spans if not any(c.start < d.end and d.start < c.end for d in directives)] if directives else spans
            # the clauses hold every token, in order: with nothing to leave out, they are the answer's
            reason = topicality.off_topic_reason(compiled.subject,
                                                 [t for c in kept for t in c.tokens] if directives else tokens,
                                                 [c.tokens for c in kept])
        if reason:
            found.append(MisconceptionFound(id=OFF_TOPIC_ID, claim=reason))
        if listed:
            found.append(MisconceptionFound(id=KEYWORD_LIST, claim=listed))
        if directives:
            found.append(MisconceptionFound(id=INJECTION_ID, claim=INJECTION_CLAIM,
                                            evidence=directives[0].quote(answer)))
        # The feedback depends on the rubric and the points' statuses alone (and on misconceptions
        # found, which few answers have): written once per rubric and statuses.
        statuses = tuple(j.status for j in judgments)
        feedback = compiled.feedback.get(statuses)
        if feedback is None:
            if len(compiled.feedback) >= FEEDBACK_MAX:
                compiled.feedback.clear()
            feedback = compiled.feedback[statuses] = (strengths_for(rubric, judgments), follow_up_for(rubric, judgments),
                                                      improvements_for(rubric, judgments, []))
        # built from values of the fields' types: no validation (models.constructed)
        return constructed(
            Assessment, judgments=judgments, misconceptions=found, strengths=list(feedback[0]),
            improvements=improvements_for(rubric, judgments, found) if found else list(feedback[2]),
            follow_up=feedback[1], model=OFFLINE_VERSION, prompt_hash=self.prompt_hash(rubric),
        )
