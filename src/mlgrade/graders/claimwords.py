"""The words the claim matcher (claims.py) reads a clause's polarity by: negations, contrasts,
warnings, verdicts, hedges, softeners, attributions, asides, and the reaches that bound them.
Kept apart from the matching so the lists can grow without the rules moving."""

from __future__ import annotations

import re

from .textmatch import stem

# Words that deny what follows them in the clause.
NEGATORS = frozenset({"not", "no", "never", "cannot", "none", "nor", "neither", "without", "nothing", "nobody",
                      "hardly", "barely"})
# Words that put what follows in contrast with the speaker's own view.
CONTRAST = frozenset({"unlike", "instead", "rather", "contrary", "opposed", "versus", "vs", "whereas", "avoid",
                      "avoiding", "beware", "resist", "stop"})
# After the claim, these warn about it ("adding more layers makes it worse").
WARNING = frozenset({"worse", "worsen", "worsens", "backfire", "backfires", "aggravate", "aggravates", "exacerbate",
                     "exacerbates", "mistake", "dangerous", "harmful", "counterproductive", "overfits", "destroy",
                     "destroys", "wreck", "wrecks", "ruin", "ruins", "fails", "leak", "leaks", "leakage",
                     "leaking", "optimistic", "inflates", "contaminates", "cheating", "breaks", "bug", "buggy",
                     "fragile", "empty", "crash", "crashes"})
# ...in any inflection ("will overfit", "overfitting", "leaked"): matched by stem.
WARNING_STEMS = frozenset(stem(w) for w in WARNING)
# Words that label a statement as wrong wherever they sit in its clause.
VERDICT = frozenset({"myth", "myths", "misconception", "misconceptions", "mistake", "mistaken", "mistakenly",
                     "wrongly", "falsely", "incorrectly", "untrue", "fallacy", "erroneous", "erroneously",
                     "misbelief", "misconceived"})
# ...and these when they are predicated ("that is wrong"), not attributive ("the wrong k").
VERDICT_PREDICATE = frozenset({"wrong", "false", "incorrect", "misleading", "inaccurate", "nonsense", "bogus"})
_COPULA = frozenset({"is", "are", "was", "were", "be", "been", "it's", "that's", "this's", "thats", "its", "sounds",
                     "seems", "quite", "plain", "simply", "totally", "completely", "flat"})
# Hedges between the words of a claim weaken it into something true ("without losing much information").
HEDGES = frozenset({"much", "little", "significant", "significantly", "important", "essential", "useful", "most",
                    "too", "many", "relevant", "meaningful", "key", "critical", "major", "piecewise", "locally",
                    "partly", "partially", "approximately", "roughly", "nearly", "almost", "perfectly", "highly",
                    "strongly", "heavily", "severely", "exactly"})
# Right before a claim, these soften an absolute into something true ("almost no information is lost",
# "usually without accuracy loss"). A claim with no absolute in it stays the claim, hedged ("usually
# k=1 works best" is still wrong): they cancel only a claim that holds an ABSOLUTE word.
SOFTENERS = frozenset({"almost", "nearly", "virtually", "practically", "essentially", "usually", "often", "typically",
                       "generally", "mostly", "largely", "little", "minimal", "negligible"})
# ...while these deny whatever follows them ("rarely overfits").
RARELY = frozenset({"rarely", "seldom"})
# What a softener can soften: a claim's "always", "no", "never", "every", "perfectly"...
ABSOLUTES = NEGATORS | frozenset({"always", "every", "all", "any", "only", "zero", "perfect", "perfectly", "completely",
                                  "entirely", "totally", "fully", "exactly", "guaranteed", "guarantees", "free", "lossless",
                                  "impossible", "must", "ever"})
# A contrast whose object carries a relative clause: the claim inside belongs to the contrasted
# thing ("unlike supervised learning, which needs labels, …").
_RELATIVE = frozenset({"which", "who", "whose", "where"})
_WORDS_ONLY = re.compile(r"[\w\s'’-]*")
# "some people think …", "it is tempting to …": the claim is reported, not made.
_ATTRIBUTION = [tuple(p.split()) for p in (
    "some people", "many people", "people often", "people think", "people believe", "some think", "some say",
    "some believe", "some claim", "commonly believed", "often believed", "often claimed", "is tempting", "it's tempting",
    "naively", "one might think", "you might think", "it is often said", "a common belief", "beginners",
    "do not confuse", "don't confuse", "not to be confused", "often confused", "is confused with",
)]
# Every phrase opens with one of these two words, or is one of these words: most clauses hold none.
_ATTRIBUTION_PAIRS = frozenset(p[:2] for p in _ATTRIBUTION if len(p) > 1)
_ATTRIBUTION_WORDS = frozenset(p[0] for p in _ATTRIBUTION if len(p) == 1)
_ATTRIBUTION_BY_FIRST: dict[str, list[tuple[str, ...]]] = {}
for _p in _ATTRIBUTION:
    _ATTRIBUTION_BY_FIRST.setdefault(_p[0], []).append(_p)
# After the cue, these words turn a negation into a verdict on the claim ("… is not true").
_JUDGED = frozenset({"true", "correct", "right", "accurate", "case", "valid"})
# ...and in a short comment clause on its own ("Not quite.", "Not really.").
_JUDGED_SHORT = _JUDGED | {"quite", "really", "so", "exactly"}
# A condition right after a claim limits it to where it holds.
_CONDITION = frozenset({"unless", "if", "only", "provided", "assuming"})
# Right after a claim, these open the next predicate or clause: a negation past one of them is
# that statement's, not a denial of the claim ("yolo is slow and cannot run in real time").
_NEXT_PREDICATE = frozenset({"and", "or", "so", "because", "since", "as", "which", "that", "who", "while", "then",
                             "thus", "hence", "therefore", "where", "when", "but", "yet", "although", "though"})
# "not only", "not just": emphasis, not denial.
_EMPHASIS = frozenset({"only", "just", "merely", "simply"})
# How far past a clause's last word a code-like cue may reach.
CODE_TAIL = 40
# After a comma, these open an aside that a claim's words may straddle ("boosting, like adaboost, …").
ASIDE_OPENERS = frozenset({"like", "such", "say", "including", "especially", "particularly", "notably", "eg", "ie",
                           "namely", "for", "specifically"})
# How many words an aside may hold.
ASIDE_MAX = 8
# Articles of a cue may be missing or differ in the answer.
ARTICLES = frozenset({"a", "an", "the"})
# How many words may sit between two words of a claim cue ("q-learning is [an] on-policy [method]").
CLAIM_GAP = 2
# How far back a negation reaches to deny a key-point cue ("does not [use a] vote").
NEGATION_REACH = 3
# A neighbouring clause this short that holds a verdict or negation is a comment on the claim
# ("That is wrong." / "A common misconception:").
VERDICT_CLAUSE_MAX = 6
