"""Hidden test cases: arguments generated afresh from a seed, in mlgrade's own process.

Their expected values are not stored anywhere: they are computed by running the rubric's
reference solution (in its own sandboxed instance), so a candidate that reads the rubric
learns nothing about them. Each generator mixes the cases that separate right from nearly
right answers (for rotations: same letters but not a rotation, digits, spaces and punctuation;
for bigrams: repeated words and irregular whitespace; for both, long inputs) and marks the edge
cases, which decide a rubric's edge-case key point.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class HiddenCase:
    args: tuple[Any, ...]
    edge: bool = False

    def call(self, function: str) -> str:
        return f"{function}({', '.join(repr(a) for a in self.args)})"


def _word(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _rotation(s: str, k: int) -> str:
    return s[k:] + s[:k] if s else s


def _is_rotation(a: str, b: str) -> bool:
    return len(a) == len(b) and b in a + a


# Alphabets of the strings: small ones make same-letter non-rotations likely; digits, spaces and
# punctuation catch answers that compare letters only. No capitals: the rubric asks a candidate to
# settle case sensitivity, so either choice, stated, is fair and no case may depend on it.
_ALPHABETS = ["ab", "abc", "abcd", "xyz", "abcdefgh", "ab c", "a,b.", "01a", "a9 b"]


def _length(rng: random.Random, long: bool) -> int:
    return rng.randint(13, 40) if long else rng.randint(3, 10)


def _rotations(rng: random.Random, count: int) -> list[HiddenCase]:
    kinds = ["rotation", "anagram", "rotation", "anagram", "near", "rotation", "anagram", "length",
             "rotation", "near", "anagram", "anagram"]
    out: list[HiddenCase] = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        alphabet = rng.choice(_ALPHABETS)
        long = i % 3 == 2  # every third case is long: catches answers wrong only past some length
        a = _word(rng, alphabet, _length(rng, long))
        if kind == "rotation":
            out.append(HiddenCase((a, _rotation(a, rng.randrange(len(a))))))
        elif kind == "anagram":
            # same letters, same length, not a rotation: what sorted()/Counter answers get wrong
            for _ in range(200):
                a = _word(rng, alphabet, max(4, _length(rng, long)))
                letters = list(a)
                rng.shuffle(letters)
                b = "".join(letters)
                if not _is_rotation(a, b):
                    out.append(HiddenCase((a, b)))
                    break
        elif kind == "near":
            b = list(_rotation(a, rng.randrange(len(a))))
            j = rng.randrange(len(b))
            b[j] = rng.choice([c for c in alphabet + "q" if c != b[j]])
            out.append(HiddenCase((a, "".join(b))))
        else:
            b = _rotation(a, rng.randrange(len(a)))
            b = b + rng.choice(alphabet) if rng.random() < 0.5 else b[:-1]
            out.append(HiddenCase((a, b), edge=True))
    return out


# Lowercase words without punctuation: the question leaves casing and punctuation to the candidate
# (to choose and state), so no case may depend on that choice; experts grade a stated lowercasing
# as excellent.
_VOCAB = ["the", "a", "cat", "dog", "sat", "on", "mat", "model", "data", "loss", "to", "be", "or", "not",
          "grad", "step", "x", "runs", "fast", "and", "slow", "of", "in", "it"]
_SPACES = [" ", "  ", "\t", "\n", " \t ", "   "]


def _sentences(rng: random.Random, count: int) -> list[HiddenCase]:
    kinds = ["plain", "repeat", "messy", "plain", "single", "plain", "messy", "repeat",
             "plain", "long", "messy", "long"]
    out: list[HiddenCase] = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        words = [rng.choice(_VOCAB) for _ in range(rng.randint(16, 30) if kind == "long" else rng.randint(2, 9))]
        if kind in ("plain", "long"):
            out.append(HiddenCase((" ".join(words),)))
        elif kind == "repeat":
            # a repeated run of words: bigrams repeat and must all be kept, in order
            run = words[: rng.randint(2, 3)]
            out.append(HiddenCase((" ".join(run * rng.randint(2, 3) + words[:1]),)))
        elif kind == "messy":
            text = words[0] + "".join(rng.choice(_SPACES) + w for w in words[1:])
            out.append(HiddenCase((rng.choice(["", " ", "\n", "  "]) + text + rng.choice(["", " ", "\t", "\n"]),),
                                  edge=True))
        else:
            out.append(HiddenCase((rng.choice(["", " ", "  "]) + rng.choice(["", words[0]]) + rng.choice(["", " "]),),
                                  edge=True))
    return out


GENERATORS: dict[str, Callable[[random.Random, int], list[HiddenCase]]] = {
    "rotations": _rotations,
    "sentences": _sentences,
}


def generate(generator: str, count: int, seed: int) -> list[HiddenCase]:
    """`count` cases from the named generator; the same seed gives the same cases."""
    return GENERATORS[generator](random.Random(seed), count)
