"""Keyword stuffing, judged by the shape of a clause: a prose-looking clause that is really a list of
cue terms, unless it makes several statements of its own or restates one key point in its own words."""

from __future__ import annotations

import math
from itertools import chain
from operator import itemgetter

from .offline_units import CompiledRubric, Unit, cue_hits
from .textmatch import is_prose, is_verbish

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
    # Each word's kind looked up by its text in C, from the table the keyword-list check filled with
    # the answer's words (_own_word: "" a function word, _CUE a cue word, else its stem, its own word).
    table = _own_table(compiled)
    words = list(map(table.get, map(_TEXT, unit.tokens)))
    if None in words:
        words = [w if w is not None else _own_word(table, t, compiled) for t, w in zip(unit.tokens, words)]
    content = len(words) - words.count("")
    free = content - words.count(_CUE)
    if free / max(1, content) >= STUFFED_MAX_FREE_SHARE:
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
            if t.stop and i not in in_cues and t.text not in LIST_GLUE}
    if len(glue) >= STRUCTURED_MIN_GLUE:
        return False
    # A dense compound sentence names several points because it makes several statements, each
    # with a verb of its own; a template that varies only its cue terms repeats its own words.
    if _statements(answer, unit, compiled) >= COMPOUND_MIN_STATEMENTS \
            and len(set(words) - {"", _CUE}) >= COMPOUND_MIN_DISTINCT * free:
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


# --- A whole answer that is a keyword list (issue 23 item 6) ---
#
# The checks above judge one clause at a time, and a clause naming one or two key points with a
# verb and a few function words of its own ("The pseudo-label needs the smoothness because of
# co-training.") reads as prose to them. Twenty thousand characters of such clauses named every key
# point over and over and scored 100. What gives a keyword list away is the answer as a whole: most
# of its words are the rubric's cue terms, and the rest is a handful of glue words used again and
# again. A person's vocabulary grows with what they write (distinct words roughly with the square
# root of the words written); a list's words of its own do not.
# On seed-dev and seed-dev2 the answers of 60 content words or more have at least 2.5 x the square
# root of their content words as words of their own (1.36 x at 54 words: the floor below keeps
# clear of it), and so do the answers concatenated per question (long ramblers, up to 1,300 content
# words); cue salads of 800 to 20,000 characters on every question, with or without sentence
# structure, 1.22 x at most (0.3 x at 20,000), with 65 % or more of their words cue terms.
SALAD_MIN_WORDS = 60  # content words: shorter answers are judged by the terse test below only
SALAD_MIN_CUE_SHARE = 0.5  # of the content words, the rubric's cue terms
SALAD_OWN_PER_ROOT = 1.5  # distinct words of its own, per square root of the content words
#
# Salads of 40 to 60 content words with a verb or two ("Labelled data and unlabelled data,
# pseudo-labels, self-training with confidence threshold, ...") are under that floor, and sentences
# of a few words each are no list clause by clause. What they lack is words of their own of either
# kind: besides the cue terms, a verb or two, and besides "and" and commas hardly a function word.
# Terse real answers are short of one kind or the other, not both: a practitioner's bullets name
# several terms with a few words each ("Selection keeps original columns: variance filter, mutual
# information, RFE wrapper") and have as few function words as a list, but words of their own; a
# dense expert sentence has few words of its own but the grammar of prose. Counting both (distinct
# function words besides the list glue, and distinct words of its own), per square root of the
# content words: on the four data sets the answers of 40 content words or more, half of them cue
# terms, have 4.5 x or more, but for the experts' keyword stuffers (2.3 to 2.7 x, all poor); bullets
# and terse answers written to be at risk 2.5 x and more; salads of 40 to 63 content words built from
# the rubrics' cues in several shapes 1.75 x at most.
# Salads padded with varied field words have as many words of their own as the rubrics' key points
# strung together (1.8 to 3.4 x the root, whatever the function words): no measure here tells them
# apart, and they are left to the test above (it holds them once long enough).
TERSE_MIN_WORDS = 40  # content words: the terse experts' two dense sentences have 30 and under
TERSE_OWN_PER_ROOT = 2.0  # distinct words of its own and function words, per square root of the content words
LIST_GLUE = frozenset(("and", "or", "also", "as", "well", "it", "is"))  # what a list joins its terms with


_TEXT = itemgetter(2)  # Token.text
_CUE = "\x00"  # a cue word, in the tables below (no stem is this)
# Words remembered per rubric: every clause of every answer is looked up here since issue 22's
# fifth round, so a long batch fills the tables of all 25 rubrics: at 20,000 words each, the peak of
# a 100,000-answer batch was x1.20 that of 10,000 (benchmarks/batch_memory.py), at 4,096 x1.18.
# A cache: clearing it changes no result.
OWN_WORDS_MAX = 4_096
_OWN_TABLES: dict[int, tuple[CompiledRubric, dict[str, str]]] = {}  # by rubric: word text -> stem if its own word, else ""


def _own_table(compiled: CompiledRubric) -> dict[str, str]:
    entry = _OWN_TABLES.get(id(compiled))
    if entry is None or entry[0] is not compiled:
        if len(_OWN_TABLES) >= 64:
            _OWN_TABLES.clear()
        entry = _OWN_TABLES[id(compiled)] = (compiled, {})
    return entry[1]


def _own_word(table: dict[str, str], t, compiled: CompiledRubric) -> str:
    if len(table) >= OWN_WORDS_MAX:
        table.clear()
    if t.stop or len(t.text) < 2:
        word = ""
    else:
        word = _CUE if compiled.index.mask(t) & compiled.cue_mask else t.stem
    table[t.text] = word
    return word


def keyword_list_reason(spans: list, masks: list[list[int]], compiled: CompiledRubric, answer: str = "") -> str:
    """Why the whole answer reads as a list of the rubric's terms rather than an explanation, or
    "". `spans`: the answer's clauses (of `answer`); `masks`: their tokens' cue-word bits (as for
    the units)."""
    found = _salad(spans, masks, compiled)
    if found is None:
        return ""
    # An explanation closed by an honest list of terms on a line of its own ("Key terms:
    # walk-forward, expanding window, gap, embargo…") counted as a whole has the list's cue terms
    # drown the explanation's own words: a 70-point answer fell to 15. Such a closing list (the
    # clauses after the last statement, set apart by a line break or a colon) is judged apart from
    # the explanation: one of the two must be a keyword list by itself. Lists woven between
    # statements, as salads are, are still judged with them.
    # The explanation must read as one, though: a short salad before the list, under the floors,
    # was judged alone and passed; one short of words of its own of both kinds goes with its list.
    last = max((i for i, c in enumerate(spans) if is_prose(c)), default=len(spans) - 1)
    if 0 <= last < len(spans) - 1 and any(mark in answer[spans[last].end:spans[last + 1].start] for mark in "\n:"):
        head, tail = slice(0, last + 1), slice(last + 1, None)
        if _salad(spans[head], masks[head], compiled) is None and _salad(spans[tail], masks[tail], compiled) is None \
                and not _telegraphic(spans[head], compiled):
            return ""
    cues, n, own, glue = found
    joined = f" and {glue} function words to join them" if glue >= 0 else ""
    return (f"The answer strings the rubric's own terms together: {cues / n:.0%} of its {n:,} words are the key "
            f"points' cue terms, with only {own} distinct words of its own{joined}. A keyword list, not an explanation.")


def _glue(texts, table: dict[str, str]) -> int:
    """Distinct function words among the word texts (looked up in the filled table), besides the
    list glue and one-letter tokens."""
    return sum(1 for w in set(texts) if len(w) > 1 and table.get(w) == "" and w not in LIST_GLUE)


def _telegraphic(spans: list, compiled: CompiledRubric) -> bool:
    """The clauses have too few words of their own, of either kind, for prose of their length
    (any length): an explanation that does not read as one."""
    table = _own_table(compiled)
    tokens = list(chain.from_iterable(c.tokens for c in spans))
    words = [w if (w := table.get(t.text)) is not None else _own_word(table, t, compiled) for t in tokens]
    n = len(words) - words.count("")
    own = len(set(words) - {"", _CUE})
    return own + _glue(map(_TEXT, tokens), table) < TERSE_OWN_PER_ROOT * math.sqrt(n)


def _listlike(n: int, own: int, glue) -> bool:
    """n content words with `own` distinct words of their own are few enough for a list; `glue`
    gives the distinct function words (asked only below SALAD_MIN_WORDS)."""
    if n >= SALAD_MIN_WORDS:
        return own < SALAD_OWN_PER_ROOT * math.sqrt(n)
    return n >= TERSE_MIN_WORDS and own + glue() < TERSE_OWN_PER_ROOT * math.sqrt(n)


def _salad(spans: list, masks: list[list[int]], compiled: CompiledRubric) -> tuple[int, int, int, int] | None:
    """(cue words, content words, distinct words of its own, distinct function words or -1 when
    not counted) of clauses that together read as a keyword list, or None."""
    total = sum(len(c.tokens) for c in spans)
    if total < TERSE_MIN_WORDS:
        return None  # the common case, and free
    cue_mask = compiled.cue_mask
    # Each word looked up by its text (its mask, so whether it is a cue word, depends on the text
    # only), in C: its stem when a word of its own, _CUE for a cue word, "" for a function word.
    # Repeated clauses counted too, these bound what the count below finds, and settle almost every
    # answer at a fraction of the cost of a loop over its tokens.
    table = _own_table(compiled)
    tokens = list(chain.from_iterable(c.tokens for c in spans))
    texts = list(map(_TEXT, tokens))
    words = list(map(table.get, texts))
    if None in words:
        words = [w if w is not None else _own_word(table, t, compiled) for t, w in zip(tokens, words)]
    n = len(words) - words.count("")
    own = set(words)
    own -= {"", _CUE}
    counted: list[int] = []

    def glue() -> int:
        if not counted:
            counted.append(_glue(texts, table))
        return counted[0]

    # the count below finds as many words or fewer (and the same own words): past both bounds at
    # n, or past the terse one at its largest, no count of fewer words is a list
    most = max(SALAD_OWN_PER_ROOT * math.sqrt(n), TERSE_OWN_PER_ROOT * math.sqrt(min(n, SALAD_MIN_WORDS - 1)))
    if n < TERSE_MIN_WORDS or len(own) >= most or (n < SALAD_MIN_WORDS and not _listlike(n, len(own), glue)):
        return None
    n = cues = 0
    seen: set[tuple[str, ...]] = set()
    for c, ms in zip(spans, masks):
        key = tuple(t.stem for t in c.tokens)
        if key in seen:
            continue  # a repeated clause counts once, as for the key points (an answer pasted twice is no list)
        seen.add(key)
        for t, m in zip(c.tokens, ms):
            if t.stop or len(t.text) < 2:
                continue
            n += 1
            cues += bool(m & cue_mask)
    if cues < SALAD_MIN_CUE_SHARE * n or not _listlike(n, len(own), glue):
        return None
    return cues, n, len(own), counted[0] if counted else -1
