"""A rubric's misconception cues, bucketed by one word each, so an answer looks only at the cues
that can match in it.

A rubric has about a hundred misconception cues; an answer holds every word of only a handful. The
filter that finds them (`claims.possible_cues`, and the same test for the cues a back-reference may
complete) used to test every cue of every claim against the answer's bits. Here each word cue sits
in the bucket of one of its words, the one fewest of the rubric's cues share (the field's common
words, "knn", "model", are in most answers): an answer whose bits miss a bucket's word skips all of
its cues with one AND. The cues that survive are exactly those the full test keeps, in their order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from itertools import compress, repeat
from operator import and_

from .anaphora import splittable
from .claims import IndexedClaim
from ..injection_scan import folds_like_ascii
from .textmatch import STOPWORDS, squash


class ClaimIndex:
    """Per claim, the cues that can match in one clause of an answer (`possible`) and those that
    can match split across an anaphor and its antecedent (`referable`), found from bucket keys."""

    def __init__(self, claims: list[tuple[str, list[IndexedClaim]]], other_bits: Iterable[int] = ()) -> None:
        self.size = len(claims)
        # how many of the rubric's cue words share each bit: the rarer, the better a bucket key
        shared: Counter[int] = Counter(other_bits)
        for _, cues in claims:
            for c in cues:
                shared.update(set(c.bits))
        buckets: dict[int, list[tuple[int, int, IndexedClaim, bool]]] = {}
        self.always: list[tuple[int, int, IndexedClaim, bool]] = []  # no word to key on (never in practice)
        self.patterns: list[tuple[int, int, IndexedClaim, str | None]] = []  # code-like cues, squashed if ASCII
        for n, (_, cues) in enumerate(claims):
            for i, c in enumerate(cues):
                if c.cue.pattern is not None:
                    plain = squash(c.cue.source)
                    self.patterns.append((n, i, c, plain if plain.isascii() else None))
                    continue
                entry = (n, i, c, splittable(c))
                # a word but an article: any match, even split across an anaphor, holds it
                keys = [(w in STOPWORDS, shared[b], -len(w), b)
                        for w, b in zip(c.cue.words, c.bits) if c.words_need & b]
                if keys:
                    buckets.setdefault(min(keys)[3], []).append(entry)
                else:
                    self.always.append(entry)
        self.buckets = list(buckets.items())
        # the same as parallel lists, so the buckets an answer's words open are picked in C
        self._bits = [bit for bit, _ in self.buckets]
        self._entries = [entries for _, entries in self.buckets]

    def candidates(self, anywhere: int, text: str) -> tuple[list[list[IndexedClaim]], list[list[IndexedClaim]]]:
        """Per claim: its cues whose every needed word is somewhere in the answer (`anywhere`, the
        union of its tokens' bits) or, code-like, whose pattern is in the text; and its word cues
        whose words but articles are all in the answer and that can split (anaphora.claim_hits)."""
        possible: list[list[tuple[int, IndexedClaim]]] = [[] for _ in range(self.size)]
        referable: list[list[tuple[int, IndexedClaim]]] = [[] for _ in range(self.size)]
        for entries in compress(self._entries, map(and_, self._bits, repeat(anywhere))):
            self._add(entries, anywhere, possible, referable)
        if self.always:
            self._add(self.always, anywhere, possible, referable)
        if self.patterns:
            # On text that folds like ASCII (injection_scan.folds_like_ascii: every character matching an
            # ASCII cue character ignoring case is ASCII, whitespace is what str.split() drops) a
            # code-like cue's pattern (its characters, spaces between them optional, any case)
            # matches only where the squashed text holds the squashed cue: a substring test skips
            # the regex scan, several times slower, for nearly every answer.
            squashed = squash(text) if folds_like_ascii(text) else None
            for n, i, c, plain in self.patterns:
                if squashed is not None and plain is not None and plain not in squashed:
                    continue
                if c.cue.pattern.search(text) is not None:  # type: ignore[union-attr]
                    possible[n].append((i, c))
        return _ordered(possible), _ordered(referable)

    @staticmethod
    def _add(entries: list, anywhere: int, possible: list, referable: list) -> None:
        for n, i, c, splits in entries:
            words = c.words_need
            if anywhere & words == words:
                if splits:
                    referable[n].append((i, c))
                need = c.need
                if anywhere & need == need:
                    possible[n].append((i, c))


def _ordered(per_claim: list[list[tuple[int, IndexedClaim]]]) -> list[list[IndexedClaim]]:
    # the cues in the rubric's order: the first cue that completes a back-reference is the one quoted
    return [[c for _, c in sorted(found, key=lambda e: e[0])] if len(found) > 1 else [c for _, c in found]
            for found in per_claim]
