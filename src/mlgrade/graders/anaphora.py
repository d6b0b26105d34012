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
anything named before it.
"""

from __future__ import annotations

from .textmatch import Clause, Token

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


__all__ = ["anaphors", "anaphor_at", "antecedent_clause", "subject_starts", "opens_with_anaphor", "PRONOUNS"]
