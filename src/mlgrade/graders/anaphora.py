"""Back-references: which earlier subject a pronoun or a bare noun phrase ("it", "they", "this",
"the model", "such methods") stands for.

People state a wrong claim across two clauses more often than in one: "Random forests average
many trees. They are therefore less accurate than one tree." A claim cue matches inside one clause
(claims.py), so the second clause alone says nothing about random forests. This module finds the
anaphors of a clause and the clause that names their antecedent, by the usual grammar of English
prose rather than by any rubric's wording:
- an anaphor is a subject pronoun (it, they, this, these) or a determiner with a generic head noun
  ("the model", "this method", "such algorithms");
- its antecedent is the subject of the previous clause: what that clause starts with, after
  sentence openers ("so", "also", "in practice") and up to SUBJECT_REACH words of determiners or
  modifiers; or, for an anaphor inside a clause, the subject that clause itself opens with
  ("Random forests average trees, so they are …");
- a clause that opens with an anaphor hands its own antecedent on, up to CHAIN_MAX clauses back
  ("Random forests average trees. They are popular. They are always less accurate …").
The nearest subject wins: a pronoun after "A single tree overfits." refers to the tree, not to
anything named before it. A claim cue then matches across the two clauses: its subject words at
the antecedent's subject position, the rest of it right after the anaphor, with the polarity rules
of claims.py judged on the anaphor's clause. The evidence quotes both clauses.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import compress, repeat
from operator import and_, or_
from typing import TYPE_CHECKING

from .claims import (ARTICLES, CONTRAST, GATE_MIN, HEDGES, ClaimCue, IndexedClaim, asserting_clause, asserting_clauses,
                     clause_bits, find_claim, may_start)
from .refutation import has_attribution, has_verdict, is_negator, refuted
from .textmatch import STOPWORDS, Clause, Token

if TYPE_CHECKING:
    from .claimindex import ClaimIndex

# Subject pronouns that stand for a thing named before. "That"/"those" are left out: they are
# far more often a complementiser or a relative pronoun ("… so that it …", "models that …").
PRONOUNS = frozenset({"it", "they", "this", "these"})
# A determiner followed by one of the generic nouns below is a bare anaphor ("the model").
DETERMINERS = frozenset({"the", "this", "these", "such", "that", "those", "both"})
GENERIC_NOUNS = frozenset({
    "model", "models", "method", "methods", "algorithm", "algorithms", "approach", "approaches", "technique",
    "techniques", "classifier", "classifiers", "estimator", "estimators", "learner", "learners", "network",
    "networks", "net", "nets", "one", "ones", "procedure", "procedures", "strategy", "tool", "tools", "system",
    "variant", "family", "idea", "trick",
})
# Words that may open a clause before its subject ("So they …", "In practice, random forests …").
OPENERS = frozenset({
    "and", "so", "also", "then", "thus", "hence", "therefore", "consequently", "plus", "basically", "actually",
    "essentially", "generally", "usually", "typically", "overall", "in", "practice", "short", "fact", "general",
    "summary", "other", "words", "because", "since", "as", "result", "of", "course",
    "obviously", "clearly", "honestly", "really", "importantly", "moreover", "furthermore", "additionally",
    "besides", "well", "now", "i", "think", "believe", "would", "say", "mean", "yes", "yeah",
})
# How many words (determiners, modifiers) may sit between a clause's opening and its subject's
# first word ("the standard random forest" → "random forest").
SUBJECT_REACH = 2
# How many clauses a chain of anaphors may hand an antecedent back through.
CHAIN_MAX = 3


def _opening(toks: list[Token], start: int = 0) -> int:
    """Index of the first token after sentence openers from `start` ("So, in practice, they …")."""
    i = start
    while i < len(toks) and toks[i].text in OPENERS and i - start < 6:
        i += 1
    return i


def anaphor_at(toks: list[Token], i: int) -> int | None:
    """The index of the anaphor's last token when one starts at token i, else None."""
    t = toks[i].text
    nxt = toks[i + 1].text if i + 1 < len(toks) else ""
    if t in DETERMINERS and nxt in GENERIC_NOUNS:
        return i + 1
    if t in PRONOUNS and nxt not in GENERIC_NOUNS:
        return i
    return None


def anaphors(clause: Clause, text: str) -> list[tuple[int, int]]:
    """(first, last) token index of every anaphor in subject position: at the clause's opening, or
    after a comma or a conjunction inside it ("…, so they are …", "… and it is …")."""
    toks = clause.tokens
    out: list[tuple[int, int]] = []
    starts = {_opening(toks)}
    for n in range(1, len(toks)):
        if "," in text[toks[n - 1].end:toks[n].start] or toks[n - 1].text in {"and", "so", "but", "because",
                                                                             "since", "that", "therefore"}:
            starts.add(_opening(toks, n))
    for i in sorted(starts):
        if i < len(toks) and (end := anaphor_at(toks, i)) is not None:
            out.append((i, end))
    return out


def opens_with_anaphor(clause: Clause) -> bool:
    toks = clause.tokens
    i = _opening(toks)
    return i < len(toks) and anaphor_at(toks, i) is not None


def subject_starts(clause: Clause) -> range:
    """Token indices where the clause's subject may begin."""
    i = _opening(clause.tokens)
    return range(i, min(len(clause.tokens), i + SUBJECT_REACH + 1))


def antecedent_clause(clauses: list[Clause], k: int) -> int | None:
    """The clause that names the subject a clause-opening anaphor in clause k refers to: the
    previous clause, or, when that one opens with an anaphor too, the one it refers to."""
    j = k - 1
    for _ in range(CHAIN_MAX):
        if j < 0:
            return None
        if not opens_with_anaphor(clauses[j]):
            return j
        j -= 1
    return None


@dataclass(frozen=True, slots=True)
class ClaimHit:
    """A clause asserting a claim: `clause` is the asserting clause; `start`..`end` the text to
    quote, from the clause that names the subject when the claim refers back to it."""

    id: str
    clause: int
    start: int
    end: int


def claim_hits(claims: list[tuple[str, list[ClaimCue]]] | list[tuple[str, list[IndexedClaim]]],
               clauses: list[Clause], text: str, masks: list[list[int]] | None = None,
               index: ClaimIndex | None = None) -> list[ClaimHit]:
    """Every claim some clause asserts, stated in one clause (claims.py) or with its subject named
    in an earlier one ("Random forests average trees. They are less accurate than one tree.").
    Indexed cues need `masks`, each clause's token masks from the same CueWords; `index`, the
    claims' ClaimIndex (claimindex.py), finds the cues that can match without testing each."""
    have, anywhere = clause_bits(masks)
    if index is not None:
        possible, referring = index.candidates(anywhere, text)
        # most claims have no cue that can match here: no clause to walk for them
        asserting = [asserting_clause(cues, clauses, text, masks, have) if cues else None for cues in possible]
    else:
        asserting, referring = asserting_clauses(claims, clauses, text, masks, have, anywhere), None
    refs: list[list[tuple[int, int]] | None] = [None] * len(clauses)  # each clause's anaphors, found on first need
    found = []
    for n, ((cid, cues), k) in enumerate(zip(claims, asserting)):
        if k is not None:
            found.append(ClaimHit(cid, k, clauses[k].start, clauses[k].end))
            continue
        # the subject sits in one clause and the rest in another, but every word is in the answer
        referable = referring[n] if referring is not None else [
            c for c in cues if not isinstance(c, IndexedClaim)
            or c.cue.pattern is None and anywhere & c.words_need == c.words_need]
        if not referable:
            continue
        hit = _referring_hit(cid, referable, clauses, text, masks, have, refs)
        if hit is not None:
            found.append(hit)
    return found


def splittable(cue: IndexedClaim) -> bool:
    """Whether a word cue can be stated across an anaphor: split into a subject and the rest."""
    return cue.cue.pattern is None and bool(_splits(cue.cue.words))


def _splits(words: tuple[str, ...]) -> list[int]:
    """Where a cue may split into a subject and the rest: the subject holds a content word, the
    rest starts with a word that is not an article and holds a content word too."""
    out = []
    for p in range(1, len(words)):
        head, tail = words[:p], words[p:]
        if words[p] in ARTICLES or all(w in STOPWORDS for w in head) or all(w in STOPWORDS for w in tail):
            continue
        out.append(p)
    return out


def _need(words: tuple[str, ...], bits: tuple[int, ...]) -> int:
    need = 0
    for w, b in zip(words, bits):
        need |= 0 if w in ARTICLES else b
    return need


@lru_cache(maxsize=20_000)
def _split_forms(claim: ClaimCue, bits: tuple[int, ...]) -> tuple[tuple, ...]:
    """Each way the cue splits into a subject (head) and the rest (tail), with their bits and the
    bits a clause must hold for each (articles aside): the same for every answer, so made once."""
    out = []
    for p in _splits(claim.words):
        head = ClaimCue(claim.source, claim.words[:p], claim.stems[:p], None)
        tail = ClaimCue(claim.source, claim.words[p:], claim.stems[p:], None)
        head_bits, tail_bits = bits[:p], bits[p:]
        out.append((head, tail, head_bits, tail_bits, _need(head.words, head_bits), _need(tail.words, tail_bits)))
    return tuple(out)


def _framed(toks: list[Token], i: int, text: str) -> bool:
    """The subject at token i is named inside a denial, a contrast or someone else's view."""
    if has_verdict(toks) or has_attribution(toks, i):
        return True
    # "Unlike bagging, boosting …": a contrast in an earlier phrase is about something else
    return any((is_negator(t) or t.text in CONTRAST) and "," not in text[t.end:toks[i].start] for t in toks[:i])


def _head(head: ClaimCue, head_bits: tuple[int, ...], head_need: int, bits: tuple[int, ...], ant: int | None,
          where: range | None, clauses: list[Clause], text: str, masks: list[list[int]] | None,
          have: list[int] | None) -> tuple[int, int] | None:
    """Where a cue's subject words sit in clause `ant`, starting within `where`, and not framed by a
    denial or someone else's view; None when they do not."""
    if ant is None or where is None or bits and have[ant] & head_need != head_need:  # type: ignore[index]
        return None
    h = find_claim(head, clauses[ant], text, bits=head_bits, masks=masks[ant] if masks else None, first=where)
    return None if h is None or _framed(clauses[ant].tokens, h[0], text) else h


def _subjects(clauses: list[Clause], k: int) -> tuple[range, int | None, range | None]:
    """Where clause k's own subject may start, the clause its opening anaphor refers to, and where
    that one's subject may start."""
    back = antecedent_clause(clauses, k)
    return subject_starts(clauses[k]), back, subject_starts(clauses[back]) if back is not None else None


def _subject_for(a0: int, k: int, own: range, back: int | None, h_back: tuple[int, int] | None,
                 h_own: tuple[int, int] | None) -> tuple[int | None, tuple[int, int] | None]:
    """The clause an anaphor at token a0 of clause k refers to, and its subject's match there (None: none)."""
    if a0 <= own.start:
        return back, h_back
    # "Random forests average trees, so they are …": the clause's own subject, before the anaphor
    return k, h_own if h_own is not None and h_own[1] < a0 else None


def _referring_hit(cid: str, cues: list, clauses: list[Clause], text: str, masks: list[list[int]] | None,
                   have: list[int] | None, refs: list[list[tuple[int, int]] | None]) -> ClaimHit | None:
    """The first clause that asserts the claim through an anaphor standing for the claim's subject
    (anaphora.py): the cue's subject words at the antecedent's subject position, the rest of the
    cue right after the anaphor, and the clause not refuting it. `refs` holds each clause's
    anaphors once found (None: not yet)."""
    forms = [(claim, bits, _split_forms(claim, bits)) for claim, bits in
             ((cue.cue, cue.bits) if isinstance(cue, IndexedClaim) else (cue, ()) for cue in cues)
             if claim.pattern is None]  # code is not referred back to
    # The rest of a cue after its last split is in every other split's rest: a clause without it
    # holds no split's rest, and its anaphors need not be found.
    least = [f[-1][5] for _, bits, f in forms if bits and f] if have is not None \
        and all(bits for _, bits, _ in forms) else None
    for k, c in enumerate(clauses):
        # not any(have[k] & t == t for t in least), in C: every t lacks some bit of the clause's
        if least is not None and all(map(and_, least, repeat(~have[k]))):  # type: ignore[index]
            continue
        if refs[k] is None:
            refs[k] = anaphors(c, text)
        if not refs[k]:
            continue
        toks = c.tokens
        n = len(toks)
        ref: list[tuple[int, int]] = refs[k]  # type: ignore[assignment]
        # The subject an anaphor points to: the antecedent clause's (for one that opens the clause), or this
        # clause's own, before the anaphor (found on first need). Each split's head is sought there once.
        own: range | None = None
        back: int | None = None
        back_where: range | None = None
        # a long clause has hundreds of anaphors: the tokens after them, where a cue's rest must start, tested in C
        many = masks is not None and len(ref) >= GATE_MIN
        if many:
            next1, next2 = [a1 + 1 for _, a1 in ref], [a1 + 2 for _, a1 in ref]
        elif masks is not None:  # the cue words just after each anaphor
            m = masks[k]
            after = [(m[a1 + 1] if a1 + 1 < n else 0) | (m[a1 + 2] if a1 + 2 < n else 0) for _, a1 in ref]
        for claim, bits, splits in forms:
            for head, tail, head_bits, tail_bits, head_need, tail_need in splits:
                if bits and have[k] & tail_need != tail_need:  # type: ignore[index]
                    continue
                # each split's subject is sought once per place: where an opening anaphor points (the
                # antecedent clause), and this clause's own subject (its widest range: an anaphor at a0
                # takes that match when it lies before a0, and a narrower range's first one is it or none)
                h_back: tuple[int, int] | None | bool = False  # False: not sought yet
                h_own: tuple[int, int] | None | bool = False
                if many:  # before hundreds of anaphors are tested: the subject is rarely there
                    if own is None:
                        own, back, back_where = _subjects(clauses, k)
                    h_back = _head(head, head_bits, head_need, bits, back, back_where, clauses, text, masks, have)
                    h_own = _head(head, head_bits, head_need, bits, k, own, clauses, text, masks, have)
                    if h_back is None and h_own is None:
                        continue
                # find_claim's first tests, for every anaphor at once in C
                if not bits:
                    candidates = iter(ref)
                elif many:
                    candidates = compress(ref, map(or_, may_start(next1, toks, text, masks[k], tail.words, tail_bits),  # type: ignore[index]
                                                   may_start(next2, toks, text, masks[k], tail.words, tail_bits)))  # type: ignore[index]
                else:
                    candidates = compress(ref, map(and_, after, repeat(tail_bits[0])))
                for a0, a1 in candidates:
                    if many and _subject_for(a0, k, own, back, h_back, h_own)[1] is None:  # type: ignore[arg-type]
                        continue
                    nxt = range(a1 + 1, a1 + 3)
                    span = find_claim(tail, c, text, bits=tail_bits, masks=masks[k] if masks else None, first=nxt)
                    if span is None:
                        continue
                    if span[0] == a1 + 2 and (text[toks[a1].end:toks[a1 + 1].start].strip()
                                              or is_negator(toks[a1 + 1]) or toks[a1 + 1].text in CONTRAST
                                              or toks[a1 + 1].text in HEDGES):
                        continue  # "it never reduces …", "they, however, …"
                    if own is None:
                        own, back, back_where = _subjects(clauses, k)
                    if a0 <= own.start:
                        if h_back is False:
                            h_back = _head(head, head_bits, head_need, bits, back, back_where, clauses, text, masks, have)
                    elif h_own is False:
                        h_own = _head(head, head_bits, head_need, bits, k, own, clauses, text, masks, have)
                    ant, h = _subject_for(a0, k, own, back, h_back, h_own)  # type: ignore[arg-type]
                    if h is None:
                        continue
                    if not refuted(clauses, k, (a0, span[1]), text):
                        return ClaimHit(cid, k, clauses[ant].start, c.end)  # type: ignore[index]
    return None


__all__ = ["ClaimHit", "claim_hits", "anaphors", "anaphor_at", "antecedent_clause", "subject_starts", "opens_with_anaphor", "PRONOUNS"]
