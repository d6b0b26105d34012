"""Which of a rubric's cue words each answer word matches, decided once per distinct word.

The offline grader used to ask `textmatch.word_matches` about every cue word against every token
of every clause (half a million calls for 500 answers). Here each (word, stem) of a rubric's cues,
key points and misconception cues gets one bit; a token's mask is the set of bits it matches, found
with a few dict lookups (stem, word, prefixes, one-deletion neighbours for typos) and verified by
the same rules as `word_matches`, so every match is the one `word_matches` would report. A phrase
or claim then needs its words' bits in a clause's tokens: one AND rejects nearly every clause.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import compress, count, repeat
from functools import reduce
from operator import and_, itemgetter, or_

from rapidfuzz.distance import Levenshtein

from .textmatch import STOPWORDS, Phrase, Token, walk_phrase

# Distinct answer words remembered per rubric (25 rubrics: ~50k masks at most); cleared when full, so a
# long batch stays memory-flat (issue 22: 100k answers within 1.2x the peak of 10k).
MASK_CACHE_MAX = 2_048
_TEXT = itemgetter(2)  # Token.text


def _one_deletion(word: str) -> set[str]:
    return {word} | {word[:i] + word[i + 1:] for i in range(len(word))}


class CueWords:
    """A rubric's cue words as bits, and each answer word's mask of the cue words it matches."""

    def __init__(self) -> None:
        self._bits: dict[tuple[str, str], int] = {}
        self._by_stem: dict[str, int] = {}
        self.stem_bits_get = self._by_stem.get  # stem_bits(s) is stem_bits_get(s, 0)
        self._by_word: dict[str, int] = {}
        self._by_prefix: dict[str, int] = {}  # cue words of 4+ letters: a token starting with one matches
        self._by_deletion: dict[str, list[tuple[str, int]]] = {}  # cue words of 6+ letters, for typos
        self._masks: dict[str, int] = {}
        self._reach: dict[str, int] = {}  # by token text: the bits `reach` (offline_units.make_unit) gets from it
        self._longest = 0  # the longest cue word: no longer prefix or one-edit neighbour can match

    def bit(self, word: str, word_stem: str) -> int:
        """The bit of a cue word (added on first use)."""
        b = self._bits.get((word, word_stem))
        if b is None:
            b = self._bits[(word, word_stem)] = 1 << len(self._bits)
            self._longest = max(self._longest, len(word))
            self._by_stem[word_stem] = self._by_stem.get(word_stem, 0) | b
            self._by_word[word] = self._by_word.get(word, 0) | b
            if len(word) >= 4:
                self._by_prefix[word] = self._by_prefix.get(word, 0) | b
            if len(word) >= 6:
                for key in _one_deletion(word):
                    self._by_deletion.setdefault(key, []).append((word, b))
            self._masks.clear()
            self._reach.clear()
        return b

    def stem_bits(self, token_stem: str) -> int:
        """The cue words whose stem is this one (the first rule of word_matches alone)."""
        return self._by_stem.get(token_stem, 0)

    def mask(self, t: Token) -> int:
        """The cue words `word_matches(cue_word, cue_stem, t.text, t.stem)` holds for. A token's
        stem is a function of its text, so the text is the cache key."""
        m = self._masks.get(t.text)
        if m is None:
            m = self._match(t.text, t.stem)
            if len(self._masks) >= MASK_CACHE_MAX:
                self._masks.clear()
            self._masks[t.text] = m
        return m

    def masks(self, tokens: list[Token]) -> list[int]:
        """`mask` of each token (the loop a clause's tokens take, kept tight)."""
        # a mask is never negative: -1 is a word not seen yet (looked up in C, no Python loop)
        out = list(map(self._masks.get, map(_TEXT, tokens), repeat(-1)))
        if -1 in out:
            out = [m if m >= 0 else self.mask(t) for t, m in zip(tokens, out)]
        return out

    def reach(self, tokens: list[Token]) -> int:
        """The cue words some token has the stem of, or, for a content word, matches (`mask`):
        what a key point's words may count in these tokens. Both depend on the token's text only."""
        parts = list(map(self._reach.get, map(_TEXT, tokens), repeat(-1)))  # never negative: -1 is unseen
        if -1 in parts:
            parts = [p if p >= 0 else self._reach_of(t) for t, p in zip(tokens, parts)]
        return reduce(or_, parts, 0)

    def _reach_of(self, t: Token) -> int:
        if len(self._reach) >= MASK_CACHE_MAX:
            self._reach.clear()
        r = self._reach[t.text] = self._by_stem.get(t.stem, 0) | (0 if t.stop else self.mask(t))
        return r

    def _match(self, text: str, text_stem: str) -> int:
        m = self._by_stem.get(text_stem, 0) | self._by_word.get(text, 0)
        # Both searches stop at the longest cue word, so a 20,000-letter "word" costs no more than
        # a long one (slicing every prefix of it, or every one-letter deletion, would be quadratic).
        for k in range(4, min(len(text), self._longest) + 1):  # cue words (4+ letters) the token starts with
            m |= self._by_prefix.get(text[:k], 0)
        if 6 <= len(text) <= self._longest + 1:  # within one edit: the two share a one-deletion neighbour
            for key in _one_deletion(text):
                for word, b in self._by_deletion.get(key, ()):
                    if not m & b and abs(len(word) - len(text)) <= 2 \
                            and Levenshtein.distance(word, text, score_cutoff=1) <= 1:
                        m |= b
        return m


@dataclass(frozen=True, slots=True)
class IndexedPhrase:
    """A word cue (not a literal one) with its words' bits in one rubric's CueWords."""

    phrase: Phrase
    bits: tuple[int, ...]
    optional: tuple[bool, ...]  # a function word of the cue, which may be absent unless strict
    need: int  # bits any non-strict match must find in the clause
    need_strict: int


def index_phrase(phrase: Phrase, words: CueWords) -> IndexedPhrase:
    bits = tuple(words.bit(w, s) for w, s in zip(phrase.words, phrase.stems))
    optional = tuple(w in STOPWORDS for w in phrase.words)
    need = bits[0]
    for b, opt in zip(bits[1:], optional[1:]):
        need |= 0 if opt else b
    strict = 0
    for b in bits:
        strict |= b
    return IndexedPhrase(phrase, bits, optional, need, strict)


def find_indexed(ip: IndexedPhrase, tokens: list[Token], masks: list[int], have: int,
                 strict: bool = False) -> tuple[int, int] | None:
    """`textmatch.find_phrase` on tokens whose masks are known (`have` is their union): the same
    walk, the same result, with a bit test in place of each word comparison."""
    need = ip.need_strict if strict else ip.need
    if have & need != need:
        return None
    bits, first = ip.bits, ip.bits[0]
    # the tokens holding the first word, found in C (compress over the masks ANDed with its bit)
    starts = compress(count(), map(and_, masks, repeat(first)))
    if len(bits) == 1:  # a one-word cue: the walk's first start completes it
        i = next(starts, None)
        return None if i is None else (i, i)
    return walk_phrase(tokens, starts, len(bits),
                       lambda j, k: masks[k] & bits[j], ip.optional, 1, strict)
