"""Text primitives for the offline grader and rubric derivation: tokens with offsets, stems,
clauses, phrase (cue) matching and a crude "is this prose or a keyword list" test.

Every token keeps its character offsets into the original text, so any span we quote as
evidence is an exact substring of the answer and passes `evidence.verify_judgments`.
Stemming is PyStemmer (Snowball English); typo tolerance is rapidfuzz. Results that depend
only on a word are cached, because the same few thousand words recur across every answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from bisect import bisect_left
from functools import lru_cache
from itertools import repeat
from operator import add, itemgetter
from typing import Any, Callable, Iterable, NamedTuple

import Stemmer
from rapidfuzz.distance import Levenshtein

_STEMMER = Stemmer.Stemmer("english")
_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")
# Clause boundaries: sentence punctuation, semicolons, colons, line breaks, bullets. The
# definition; `clause_ends` finds the same matches in linear time (this pattern backtracks
# quadratically through a long run of punctuation with no space after it: issue 27 H3).
_CLAUSE_END = re.compile(r"[.!?;:\n]+(?=\s|$)|\n|(?:^|\s)[-*•]\s")
_PUNCT_OR_BULLET = re.compile(r"[.!?;:\n]|(?:^|\s)[-*•]\s")
_PUNCT_RUN = re.compile(r"[.!?;:\n]+")
_PUNCT = re.compile(r"[.!?;:\n]")
_BULLET_CHAR = re.compile(r"[-*•]\s")
_SPACE = re.compile(r"\s")

# Function words. Prose is full of them; a keyword list has almost none.
STOPWORDS = frozenset("""
a about above after again against all also although am an and any are as at be because been before being
below between both but by can cannot could did do does doing done down during each either else enough etc
even ever every few for from further had has have having he her here hers him his how however i if in into
is it its itself just least less let like may me might more most much must my neither no nor not now of off
often on once one only onto or other others otherwise our ours out over own per rather same she should
since so some such than that the their theirs them themselves then there therefore these they this those
though through thus to too under until up upon us very via was we well were what whatever when where
whereas whether which while who whom whose why will with within without would yet you your yours
""".split())

# Words that carry the verb of a clause in short technical prose (besides anything ending -s/-ed/-ing),
# including the base-form verbs of instructions ("train on the past, validate on the next block").
_VERBISH = frozenset("""
is are was were be been being am has have had do does did can cannot could will would should may might must
make makes use uses need needs help helps let lets keep keeps give gives take takes get gets mean means
""".split()) | frozenset("""
train fit validate test split shuffle compute evaluate tune pick choose select apply add remove drop scale
normalize standardize sort check compare measure try avoid prefer freeze start report monitor retrain sample
average combine predict learn estimate plot count return store find build reduce increase set run stop fix
map replace encode decode tokenize embed weight penalize prune stack vote bag boost clip cap ensure hold
""".split())

# British -ise/-isation spellings folded to -ize so "normalise" and "normalize" share a stem.
_ISE = re.compile(r"(?<=[a-z]{3})(al|ar|im|an|or|ul|iz|ri|ti|at|en|er|ic|ag|ol|ot)is(e|ed|es|er|ers|ing|ation|ations)$")
_OUR = {"behaviour": "behavior", "behaviours": "behaviors", "colour": "color", "neighbour": "neighbor",
        "neighbours": "neighbors", "modelling": "modeling", "modelled": "modeled", "labelled": "labeled",
        "labelling": "labeling", "unlabelled": "unlabeled", "travelling": "traveling", "centre": "center",
        "optimisation": "optimization"}


@lru_cache(maxsize=20_000)  # a working vocabulary; bounded so a long batch stays memory-flat
def stem(word: str) -> str:
    """Lower-cased, spelling-folded Snowball stem of one word."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    w = _OUR.get(w, w)
    w = _ISE.sub(r"\1iz\2", w)
    return _STEMMER.stemWord(w)


class Token(NamedTuple):  # immutable like a frozen dataclass, and built three times faster
    start: int
    end: int
    text: str  # lower-cased surface form
    stem: str
    stop: bool


_WORD_INFO: dict[str, tuple[str, str, bool]] = {}  # surface word -> (lower-cased, stem, is a function word)
_new_token = tuple.__new__


_SPAN, _GROUP = re.Match.span, re.Match.group
_START = itemgetter(0)  # Token.start


def tokenize(text: str) -> list[Token]:
    # every answer passes here once: the words' lookups and the tokens' building run in C (maps), which
    # costs less than one comprehension, itself half a loop with a branch per word
    found = list(_WORD.finditer(text))
    infos = list(map(_WORD_INFO.get, map(_GROUP, found)))
    if None in infos:
        infos = [info or _learn(m[0]) for info, m in zip(infos, found)]
    return list(map(_new_token, repeat(Token), map(add, map(_SPAN, found), infos)))


def _learn(word: str) -> tuple[str, str, bool]:
    low = word.lower()
    if len(_WORD_INFO) >= 10_000:  # bounded like the stem cache: a 100k batch stays memory-flat
        _WORD_INFO.clear()
    info = _WORD_INFO[word] = (low, stem(low), low in STOPWORDS)
    return info


def tokenize_words(text: str) -> list[str]:
    return [m.group().lower() for m in _WORD.finditer(text)]


_ITEM_SEP = re.compile(r"[,;/\n•]|\s(?:and|or|&)\s|(?:^|\s)(?:-|\*|\d+[.)-])\s*", re.IGNORECASE)


def list_items(text: str) -> int:
    """How many items a text lists, separated by commas, "and", bullets or numbers."""
    return sum(1 for part in _ITEM_SEP.split(text) if part and _WORD.search(part))


def content_stems(text: str) -> list[str]:
    return [t.stem for t in tokenize(text) if not t.stop and len(t.text) > 1]


@dataclass(slots=True)
class Clause:
    start: int
    end: int
    tokens: list[Token]

    def span(self, text: str) -> str:
        return text[self.start:self.end]

    @property
    def content(self) -> list[Token]:
        return [t for t in self.tokens if not t.stop and len(t.text) > 1]


# Abbreviations whose full stop does not end a sentence ("rolling-origin evaluation, e.g. a
# walk-forward split"). "etc." and "al." end one only when a capital letter follows.
_ABBREV = re.compile(r"(?:\b(?:e\.g|i\.e|cf|vs|viz|approx|resp|incl|esp|w\.r\.t|a\.k\.a|no|fig|eq|sec|ch)|"
                     r"\b(?:etc|al)|\b[A-Za-z])\.$", re.IGNORECASE)
# Seven word characters right before the stop: every _ABBREV branch starts at a word boundary
# at most six characters before it ("approx"), so none can match.
_LONG_WORD_END = re.compile(r"\w{7}$")
_ABBREV_OPEN = re.compile(r"\b(?:e\.g|i\.e|cf|vs|viz|approx|w\.r\.t|a\.k\.a)\.$", re.IGNORECASE)


def _abbreviation_before(text: str, start: int, end: int) -> bool:
    """True when the punctuation at text[start:end] is just an abbreviation's full stop."""
    if text[start:end].strip() != "." or "\n" in text[start:end]:
        return False
    if _LONG_WORD_END.search(text, max(0, start - 7), start):
        return False  # the word before the stop is longer than any abbreviation (most sentence ends)
    head = text[max(0, start - 8):start + 1]
    if not _ABBREV.search(head):
        return False
    if _ABBREV_OPEN.search(head):
        return True  # "e.g." and "i.e." always continue the sentence
    nxt = text[end:end + 40].lstrip()
    # "etc." / "et al." / an initial: a sentence end only if a capitalised word follows
    return not nxt or not nxt[0].isupper()


def clause_ends(text: str) -> list[tuple[int, int]]:
    """The (start, end) of every `_CLAUSE_END` match, as `finditer` gives them, in linear time.

    At a position inside a run of punctuation, the pattern's first branch takes the longest stretch
    of the run followed by a space or the end: the whole run, else up to the run's last line
    break. Failing that, a line break alone matches; and if neither matches there, nothing does
    before the run ends (its other characters are not spaces). Bullets are matched as written."""
    out: list[tuple[int, int]] = []
    pos, n = 0, len(text)
    # With no bullet character before a space anywhere, no bullet can match: a search for the
    # punctuation alone scans several times faster than the alternation (most answers have none).
    search = _PUNCT_OR_BULLET.search if _BULLET_CHAR.search(text) else _PUNCT.search
    while (m := search(text, pos)) is not None:
        s = m.start()
        if m.end() - s != 1 or text[s] not in ".!?;:\n":
            out.append((s, m.end()))  # a bullet
            pos = m.end()
            continue
        r = _PUNCT_RUN.match(text, s).end()
        q = r if r == n or _SPACE.match(text, r) else text.rfind("\n", s + 1, r)
        if q > s:
            out.append((s, q))
            pos = q
        elif text[s] == "\n":
            out.append((s, s + 1))
            pos = s + 1
        else:
            pos = r
    return out


def clauses(text: str, tokens: list[Token] | None = None) -> list[Clause]:
    """Split into clauses at sentence punctuation and line breaks, trimming whitespace and
    punctuation from each end so a clause is a clean, quotable substring."""
    tokens = tokens if tokens is not None else tokenize(text)
    bounds = [0]
    for start, end in clause_ends(text):
        if _abbreviation_before(text, start, end):
            continue
        bounds.append(end)
    bounds.append(len(text))
    out: list[Clause] = []
    starts = list(map(_START, tokens))
    lo = 0
    for b in bounds[1:]:
        hi = bisect_left(starts, b, lo)
        toks = tokens[lo:hi]  # the tokens starting in [previous bound, b)
        lo = hi
        if toks:
            # quote from the first to the last token, plus a closing bracket/quote if one follows
            end = toks[-1].end
            while end < b and text[end] in ")]\"'’%":
                end += 1
            out.append(Clause(toks[0].start, end, toks))
    return out


PROSE_MIN_TOKENS = 5


_VERB_ENDINGS = ("s", "ed", "ing", "es")


def is_verbish(t: Token) -> bool:
    """A word that may carry a clause's verb: a known verb, or anything ending -s/-ed/-ing (crude on purpose)."""
    return t.text in _VERBISH or (len(t.text) > 3 and not t.stop and t.text.endswith(_VERB_ENDINGS))


def is_prose(clause: Clause) -> bool:
    """True when a clause reads as a statement rather than a list of terms: it has a verb-like
    word and a share of function words that real sentences have and keyword lists lack."""
    toks = clause.tokens
    n = len(toks)
    if n < PROSE_MIN_TOKENS:
        return False  # "depends on the algorithm" as a bullet is a term, not a statement
    stops = lists = 0
    verb = False
    for t in toks:  # one pass (is_verbish inlined): every clause of every answer comes here
        if t.stop:
            stops += 1
            lists += t.text == "and" or t.text == "or"
        if not verb:
            verb = t.text in _VERBISH or (len(t.text) > 3 and not t.stop and t.text.endswith(_VERB_ENDINGS))
    if not verb:
        return False
    # Lists are held together by commas and "and"; a sentence needs other glue too.
    glue = stops - lists
    return glue / n >= 0.12 and stops / n >= 0.18


def lexical_diversity(tokens: list[Token]) -> float:
    """Distinct content stems / content tokens: 1.0 for varied text, low for repeated terms."""
    content = [t.stem for t in tokens if not t.stop]
    if not content:
        return 0.0
    return len(set(content)) / len(content)


# --------------------------------------------------------------------------- cue phrases


@dataclass(frozen=True, slots=True)
class Phrase:
    """A cue compiled for matching: its words, matched in order with at most one word between."""

    source: str
    words: tuple[str, ...]  # lower-cased words; any may be a prefix ("standardi")
    stems: tuple[str, ...]
    literal: str | None = None  # code-like cue: matched as a squashed substring instead


_SYMBOLIC = re.compile(r"[^\w\s'’-]")


def squash(text: str) -> str:
    """Lower-case with all whitespace removed: how code-like cues ("a + a", "o(n^2)") are matched."""
    return "".join(text.lower().split())


@lru_cache(maxsize=20_000)
def compile_phrase(cue: str) -> Phrase | None:
    words = tuple(m.group().lower() for m in _WORD.finditer(cue))
    if not words:
        return None
    literal = bool(_SYMBOLIC.search(cue)) or all(w in STOPWORDS or len(w) < 2 for w in words)
    return Phrase(cue, words, tuple(stem(w) for w in words), squash(cue) if literal else None)


@lru_cache(maxsize=50_000)  # bounded: a 100k-answer batch must not grow it without end
def word_matches(cue_word: str, cue_stem: str, token_text: str, token_stem: str) -> bool:
    """A cue word matches a token by stem, as a prefix (cues like "regulari"), or, for longer
    words, within a small edit distance (student typos: "simluate")."""
    if token_stem == cue_stem or token_text == cue_word:
        return True
    if len(cue_word) >= 4 and token_text.startswith(cue_word):
        return True
    if len(cue_word) >= 6 and len(token_text) >= 6 and abs(len(cue_word) - len(token_text)) <= 2:
        return Levenshtein.distance(cue_word, token_text, score_cutoff=1) <= 1
    return False


def find_phrase(phrase: Phrase, tokens: list[Token], max_gap: int = 1, strict: bool = False) -> tuple[int, int] | None:
    """Index range [i, j] of the tokens matching the phrase, or None. Unless `strict`, one extra
    word may sit between cue words and function words of the cue may be missing in the answer
    ("depends on the model" ~ "depends on model")."""
    words, stems = phrase.words, phrase.stems
    if phrase.literal is not None:
        return None  # callers match literal cues with `squash`

    def matches(j: int, k: int) -> bool:
        return word_matches(words[j], stems[j], tokens[k].text, tokens[k].stem)

    return walk_phrase(tokens, (i for i in range(len(tokens)) if matches(0, i)), len(words), matches,
                       tuple(w in STOPWORDS for w in words), max_gap, strict)


def walk_phrase(tokens: list[Token], starts: Iterable[int], n_words: int, matches: Callable[[int, int], Any],
                optional: tuple[bool, ...], max_gap: int = 1, strict: bool = False) -> tuple[int, int] | None:
    """The walk behind find_phrase, for any way of telling whether cue word j matches token k:
    from each start (the tokens matching the first word, in order), each next word of the cue
    within max_gap + 1 tokens of the last one found; an `optional` word (a function word) may be
    missing unless `strict`. The first start that completes the cue wins."""
    if strict:
        max_gap = 0
    n = len(tokens)
    for i in starts:
        pos, ok = i, True
        for j in range(1, n_words):
            found = None
            for k in range(pos + 1, min(n, pos + 2 + max_gap)):
                if strict and tokens[k].start - tokens[pos].end > 1:
                    break  # strict phrases do not run across punctuation: "a label), the cluster"
                if matches(j, k):
                    found = k
                    break
            if found is None:
                if optional[j] and not strict:
                    continue  # a function word of the cue may be absent
                ok = False
                break
            pos = found
        if ok:
            return i, pos
    return None
