"""Is a clause that matched a key point's cue about the subject at all?

Keyword stuffing in silly sentences ("gradient descent on a ski slope will converge faster",
"use standardisation or min-max for bread") hits the cues with real grammar around them, so the
prose checks in offline.py let it through. What gives it away is the rest of the clause: its
other content words come from outside the field. The domain vocabulary is the rubric's own text
(question, model answer, key points, cues, misconceptions, errata, follow-ups), the words at
least two of the bank's rubrics use, and a short list of common ML / statistics / CS words; it is built once per rubric.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from functools import lru_cache

from ..models import Rubric
from .textmatch import Token, stem, tokenize

# A matched clause is off-topic when at least OFF_TOPIC_MIN_WORDS of its content words outside the
# key point's own words and cues are outside the domain vocabulary, and they are at least
# OFF_TOPIC_SHARE of those words. Such a clause earns partial at most. Grid (BANK_MIN_RUBRICS 1/2 ×
# MIN_WORDS 1/2 × SHARE 0.5/0.67) on seed-dev odd questions: SHARE 0.5 cost an excellent answer 17
# points; MIN_WORDS 1 caught one more stuffed answer but demoted a strong answer's plain English
# ("it suffers from…": no general-English list here). Even questions: unchanged (notes/fix-f4.md).
OFF_TOPIC_MIN_WORDS = 2
OFF_TOPIC_SHARE = 2 / 3  # two thirds (0.67 let 2 of 3 words through by rounding)
# An answer where this share of its matched points (and at least this many) rest on suspect clauses
# (even one off-domain word each) is stuffing as a whole: every point it earns is partial at most
# (so 50 at most, weak), each is marked, and review.py raises off_topic.
OFF_TOPIC_ANSWER_SHARE = 0.5
OFF_TOPIC_ANSWER_MIN = 2
# Written into a judgment's comment so review.py can count off-topic evidence without the grader.
MARKER = "off-topic words:"

# Words of the trade an answer may use that a 25-question bank need not contain.
_COMMON = """
accuracy activation adam algorithm analysis approximate array assumption attention average axis
backpropagation batch baseline bayes bayesian benchmark bias binary bit boosting bootstrap bound
byte cache categorical causal cell centroid chain class classifier classification cluster
clustering coefficient compute computation confidence constant constraint convex convolution
correlation cost covariance cpu cross data dataset decision decoder deep default dense density
derivative deviation dimension discrete distance distribution domain dropout embedding encoder
encoding ensemble entropy epoch error estimate estimator evaluation example experiment exponential
feature filter fit function gaussian generalise generalize gpu gradient graph greedy heuristic
hidden histogram hyperparameter hypothesis index inference input instance integer interval
iteration kernel label latent layer learn learning likelihood linear logistic loop loss machine
margin matrix maximum mean measure median memory method metric minimum model momentum network
neural neuron node noise nonlinear norm normal normalization normalisation objective optimal
optimization optimiser optimizer outlier output overfit overfitting parameter pipeline pixel
polynomial population posterior precision predict prediction predictor prior probability
problem process projection pruning query random rank rate recall recursion regression
regularization regularisation reward risk sample sampling scalar scale score search sequence
set sigmoid signal similarity softmax space sparse split standard state statistic statistics
step stochastic string sum supervised tensor test threshold token train training transform tree
tuning underfit unsupervised validation value variable variance vector weight window
age click customer churn document email fraud house image income patient price product salary
sales sensor sentence spam stock temperature text traffic transaction user weather word
""".split()  # the last two lines: the usual worked examples of ML answers
# A word of the bank counts as the field's when at least this many rubrics use it: a word only one
# other question needs (q23's "dinner") is that question's subject, not this one's.
BANK_MIN_RUBRICS = 2


@lru_cache(maxsize=1)
def _bank_stems() -> frozenset[str]:
    from ..rubrics import builtin_rubrics_dir, rubric_files

    from collections import Counter

    used_by: Counter[str] = Counter()
    for path in rubric_files(builtin_rubrics_dir()):
        used_by.update({t.stem for t in tokenize(_main_text(path.read_text(encoding="utf-8"))) if not t.stop})
    return frozenset({stem(w) for w in _COMMON} | {s for s, n in used_by.items() if n >= BANK_MIN_RUBRICS})


_TOP_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*:", re.MULTILINE)


def _main_text(text: str) -> str:
    """A rubric file's text with each follow-up reduced to its question. The follow-ups' own key
    points and cues are for grading follow-up answers: the vocabulary that decides whether a main
    answer is on topic stays what it was before they were written."""
    start = re.search(r"^follow_ups:", text, re.MULTILINE)
    if not start:
        return text
    after = _TOP_KEY.search(text, start.end())
    end = after.start() if after else len(text)
    try:
        from ..textfiles import load_yaml

        follow_ups = (load_yaml(text) or {}).get("follow_ups") or []
    except Exception:  # a malformed file still counts by its raw words, as it always did
        return text
    questions = [f.get("question", "") if isinstance(f, dict) else str(f) for f in follow_ups]
    return text[:start.start()] + "follow_ups:\n" + "\n".join(f"  - {q}" for q in questions) + "\n" + text[end:]


def domain_stems(rubric: Rubric) -> frozenset[str]:
    """The bank's vocabulary plus this rubric's own (a custom rubric brings its own field)."""
    parts = [rubric.question, rubric.model_answer or ""]
    for kp in rubric.key_points:
        parts += [kp.point, *kp.cues]
    for m in rubric.misconceptions:
        parts += [m.claim, *m.cues]
    parts += [str(e) for e in getattr(rubric, "errata", []) or []]
    # only the questions: a follow-up's own key points must not shift how the main answer is judged
    parts += [f.question for f in getattr(rubric, "follow_ups", []) or []]
    own = {t.stem for t in tokenize(" ".join(parts)) if not t.stop}
    return _bank_stems() | own


def off_topic_words(tokens: list[Token], used: set[int], point_stems: AbstractSet[str], domain: frozenset[str]) -> list[str]:
    """The clause's off-domain words when they are OFF_TOPIC_SHARE of its other words, else [].
    `used` are the token indices a cue matched; `point_stems` the key point's own words: neither
    is "the rest". One word is a suspect (it may be plain English the bank never needed, "suffers");
    OFF_TOPIC_MIN_WORDS of them make the clause off-topic on its own."""
    rest = [t for i, t in enumerate(tokens) if i not in used and not t.stop and len(t.text) > 2
            and t.text.isalpha() and t.stem not in point_stems]
    off = [t.text for t in rest if t.stem not in domain]
    return off if off and len(off) >= OFF_TOPIC_SHARE * len(rest) else []
