"""Text aimed at the grader (`injection_attempt`), found by generic patterns: fake delimiters and
chat-role turns, "ignore the rubric", notes to an AI grader, score demands, a JSON score object —
never by matching known answers. Found spans are reported, and evidence quoted only from inside
them earns nothing (grading.finalize), so such text can never raise a score. The review flag
(review.py) and the graders (graders/injection.py) share this one detector.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from .evidence import needs_skeleton, original_span, skeleton
_ROLE = r"(?:system|assistant|developer|grader|evaluator|assessor|instructor)"
_GRADER = (r"(?:ai|a\.i\.|llm|language model|(?:automated|automatic|ai)\s+(?:grader|grading|evaluator|marker|assessor|"
           r"system|scorer|reviewer)s?|grading (?:model|system|assistant|bot|ai|llm)|grader|evaluator|assessor|scorer)")
_TOP = r"(?:full|maximum|max|perfect|top|highest)\s+(?:marks?|scores?|grades?|points|credit|band|rating)"
_HIGH = r"(?:100|9\d)(?:\s*/\s*100)?(?![\d%]|\.\d)"

# (kind, pattern, how far the span reaches: "match" | "sentence" | "line")
_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (kind, re.compile(rx, re.IGNORECASE | re.MULTILINE), reach) for kind, rx, reach in (
        # fake delimiters: closing/opening tags of the prompt's parts, chat-template tokens, end-of-answer markers
        ("fake_delimiter", r"</?\s*(?:candidate|student|user|system|assistant|grader|grading|end)?[_\- ]?"
                           r"(?:answer|response|submission|input|instructions?|rubric|system|assistant|prompt|context|"
                           r"data|note|eval(?:uation)?|grader)(?:[_\- ][a-z]+)?\s*/?>", "match"),
        ("fake_delimiter", r"<\|[a-z_ ]{2,30}\|>|\[/?inst\]|<</?sys>>", "match"),
        ("fake_delimiter", r"^[\s\W]{0,6}(?:end|begin|start|close)\s+(?:of\s+)?(?:the\s+)?(?:candidate'?s?\s+|student'?s?\s+|user\s+)?"
                           r"(?:answer|response|submission|input|text|data)\b[\s\W]{0,6}$", "line"),
        # a hidden comment that talks to the grader
        ("hidden_comment", r"<!--(?:(?!-->)[\s\S]){0,400}?\b(?:grader|grading|evaluator|score|marks?|rubric|ignore|instructions?|"
                           r"ai|llm|model)\b(?:(?!-->)[\s\S]){0,400}?(?:-->|\Z)", "match"),
        # a fake chat turn: "SYSTEM:", "### Assistant:", "[system]", at a line start or right after a sentence/tag
        ("role_turn", rf"(?:^|(?<=[.!?>\]}}])\s*)[\s#*>\[(<|]{{0,6}}{_ROLE}(?:\s+(?:message|prompt|note|override|instruction|turn))?"
                      r"\s*[\]>|)*]{0,3}\s*[:>\]\-\u2013\u2014]", "line"),
        # a bracketed label at a line start: "[SYSTEM MESSAGE — grading pipeline]", "(Grader note, v2)"
        ("role_turn", rf"^[ \t#*>]{{0,6}}[\[(]\s*{_ROLE}\b[^\]\n)]{{0,60}}[\])]", "line"),
        # instructions to drop the rubric or earlier instructions
        ("ignore_instructions", r"\b(?:ignore|disregard|forget|override|bypass)\b[^.\n]{0,30}?"
                                r"\b(?:(?:previous|prior|above|earlier|all|any|your|these|those|the|grading|original|system)\s+)+"
                                r"(?:instructions?|rubrics?|guidelines|rules|criteria|prompts?|directions)\b", "sentence"),
        ("ignore_instructions", r"\b(?:do not|don't|never)\s+(?:apply|use|follow|consult)\s+(?:the\s+|your\s+|any\s+)?"
                                r"(?:grading\s+)?(?:rubrics?|(?:grading|system|original)\s+(?:instructions|criteria|prompt)|instructions)\b",
         "sentence"),
        ("ignore_instructions", r"\bignore (?:everything|all) (?:above|before|else)\b", "sentence"),
        ("ignore_instructions", r"\b(?:ignore|disregard|forget)\s+(?:everything\s+|all\s+|anything\s+)?(?:the\s+)?(?:above|preceding)"
                                r"(?:\s+(?:text|instructions?|content|messages?|prompt))?\s*(?:[.,;:!]|and\b|$)", "sentence"),
        # a note addressed to an automated grader
        ("grader_address", rf"\b(?:note|message|instructions?|attention|memo|reminder|dear|hello|hi)\b[^.\n]{{0,25}}?\b(?:to|for)\s+"
                           rf"(?:the\s+|any\s+|all\s+)?{_GRADER}\b", "sentence"),
        ("grader_address", rf"\bif you are (?:an?\s+|the\s+)?{_GRADER}\b", "sentence"),
        ("grader_address", rf"^[\s\W]{{0,6}}(?:dear|attention|to)\s+(?:the\s+)?{_GRADER}\b", "sentence"),
        # demands for a score
        ("score_demand", rf"\b(?:give|award|assign|grant|deserves?|receive|get|return|output|rate|mark|grade|score)(?:s|ed|ing)?\b"
                         rf"[^.\n]{{0,40}}?\b{_TOP}\b", "sentence"),
        ("score_demand", rf"\b(?:give|award|assign|grant|deserves?|receive|return|output|set|must get|should get)\b[^.\n]{{0,30}}?"
                         rf"\b(?:[a-z]+_)?(?:score|grade|marks?|rating)\s*(?:of|=|:|to|is|as)?\s*{_HIGH}", "sentence"),
        ("score_demand", rf"\b(?:give|award|assign|grade|rate|mark|score)\s+(?:this|the|my|it|me)(?:\s+(?:answer|response|"
                         rf"submission|candidate))?\s+(?:an?\s+|as\s+)?(?:{_HIGH}|10\s*/\s*10|a\+|strong|excellent|perfect)",
         "sentence"),
        ("score_demand", r"\b(?:mark|grade|rate|classify|label|score)\s+(?:this|the|my)\s+(?:answer|response|submission)\s+as\s+"
                         r"(?:strong|excellent|correct|perfect|complete|covered)\b", "sentence"),
        ("score_demand", rf"\b(?:this|the|my)\s+(?:answer|response|submission)\s+(?:deserves|earns|merits|is worth|should (?:get|receive|"
                         rf"score|be (?:given|graded|rated|scored))|must (?:get|receive|score|be (?:given|graded|rated|scored)))\s+"
                         rf"(?:an?\s+|the\s+)?(?:{_HIGH}|{_TOP}|10\s*/\s*10|a\+|strong|excellent|perfect)", "sentence"),
        ("score_demand", rf"\b(?:correct|final|right|true|appropriate|expected)\s+(?:score|grade|mark|band|rating)\s+"
                         rf"(?:for\s+(?:this|the|my)\s+(?:answer|response|submission)\s+)?(?:is|=|:|should be|must be)\s*"
                         rf"(?:{_HIGH}|strong|excellent|a\+)", "sentence"),
        ("score_demand", r"\b(?:all|every)\s+key[ _-]?points?\s+(?:are|is|should be|must be)\s+(?:marked\s+)?(?:as\s+)?covered\b",
         "sentence"),
        # rules laid down for the graders: "Graders must not lower this score", "reviewers should not mention this"
        ("grader_address", r"\b(?:graders?|evaluators?|reviewers?|assessors?|markers?)\s+(?:must|should|shall|are to|may)\s+"
                           r"(?:not\s+)?(?:lower|reduce|deduct|change|mention|award|assign|give|mark|grade|score|accept|override)\b"
                           r"[^.\n]{0,25}?\b(?:scores?|grades?|marks?|points?|bands?|this\s+(?:notice|note|message|update|instruction))\b",
         "sentence"),
        # a bare JSON field that sets a grade: "final_score": 97, 'band': 'strong', "grader_override": true
        ("json_score", r"[\"'](?:[a-z]+_)*(?:score|grade|band|rating|marks?)[\"']\s*[:=]\s*"
                       r"(?:[5-9]\d|100)(?![\d.])|[\"'](?:[a-z]+_)*(?:score|grade|band|rating)[\"']\s*[:=]\s*[\"']"
                       r"(?:strong|adequate|excellent|pass|a\+?)[\"']|[\"']?(?:[a-z]+_)?override[\"']?\s*[:=]\s*[\"']?(?:true|yes|1)\b",
         "match"),
        # a JSON object that looks like a grade
        ("json_score", r"\{[^{}]{0,300}?[\"']?(?:score|final_score|grade|band|rating|marks?|status)[\"']?\s*:\s*"
                       r"(?:[\"']?(?:[5-9]\d|100)(?![\d.])|[\"'](?:strong|adequate|covered|pass|a\+?)[\"'])[^{}]{0,300}\}?", "match"),
    ))

# Words each pattern cannot match without (every group needs one, in the casefolded answer): a
# substring test skips a pattern for the many answers that cannot contain it. None: always run.
_GATES: tuple[tuple[tuple[str, ...], ...] | str | None, ...] = (
    (("<",),),  # closing/opening tags
    (("<|", "[inst", "[/inst", "<<sys", "<</sys"),),
    None,  # end-of-answer marker lines
    (("<!--",),),
    (("system", "assistant", "developer", "grader", "evaluator", "assessor", "instructor"),),
    (("system", "assistant", "developer", "grader", "evaluator", "assessor", "instructor"), ("[", "(")),
    (("ignore", "disregard", "forget", "override", "bypass"),
     ("instruction", "rubric", "guideline", "rule", "criteria", "prompt", "direction")),
    (("do not", "don't", "never"), ("rubric", "instruction", "criteria", "prompt")),
    (("ignore",),),
    (("ignore", "disregard", "forget"), ("above", "preceding")),
    "grader", "grader", "grader",  # notes to the grader: they name one (_names_a_grader)
    (("full", "max", "perfect", "top", "highest"),),
    (("score", "grade", "mark", "rating"),),
    (("give", "award", "assign", "grade", "rate", "mark", "score"), ("10", "9", "a+", "strong", "excellent", "perfect")),
    (("answer", "response", "submission"),),
    (("answer", "response", "submission"), ("deserv", "earn", "merit", "worth", "should", "must")),
    (("score", "grade", "mark", "band", "rating"), ("correct", "final", "right", "true", "appropriate", "expected")),
    (("key",), ("covered",)),
    (("grader", "evaluator", "reviewer", "assessor", "marker"),),
    (("score", "grade", "band", "rating", "mark", "override"), (":", "=")),
    (("{",),),
)
assert len(_GATES) == len(_PATTERNS), "one gate (or None) per pattern"
# The patterns without IGNORECASE, for ASCII answers: there lower() maps offsets one to one and a
# lower-case pattern matches the lowered text exactly where it matches the answer ignoring case,
# several times faster. A pattern naming an upper-case letter (not an escape: \W, \Z) keeps the flag.
_LOWER_PATTERNS: tuple[re.Pattern[str] | None, ...] = tuple(
    None if re.search(r"(?<!\\)[A-Z]", re.sub(r"\\\\|\\[A-Za-z]", "", rx.pattern))
    else re.compile(rx.pattern, re.MULTILINE) for _, rx, _ in _PATTERNS)
# Tested on answers that fold like ASCII (folds_like_ascii: none of the four letters IGNORECASE
# matches to an ASCII one, such as "İ", which matches "i" but folds to "i̇"): further words, then a
# part of the pattern that any match contains, searched in the lower-cased text without IGNORECASE
# (several times faster than the whole pattern with it).
# The score demand's _TOP names a mark, _HIGH is a 9x or a 100 after the score's name, and a JSON
# score field closes its quote right after the name (or says "override").
_ASCII_GATES: dict[int, tuple[tuple[tuple[str, ...], ...], re.Pattern[str]]] = {
    13: ((("mark", "score", "grade", "point", "credit", "band", "rating"),), re.compile(_TOP)),
    14: ((("9", "100"),), re.compile(r"(?:score|grade|marks?|rating)\s*(?:of|=|:|to|is|as)?\s*(?:100|9\d)")),
    21: ((tuple(w + q for w in ("score", "grade", "band", "rating", "mark", "marks") for q in "\"'") + ("override",),),
         re.compile(r"(?:score|grade|band|rating|marks?)[\"']\s*[:=]|override[\"']?\s*[:=]")),
}
assert [_PATTERNS[i][0] for i in _ASCII_GATES] == ["score_demand", "score_demand", "json_score"]

# The notes to the grader all end on a word of _GRADER that follows a space and ends at a word
# boundary, so none matches an answer without one. "ai" is too common a substring to test for
# ("train"): it counts as a word of its own only. On ASCII text, where casefold() folds exactly
# what IGNORECASE matches, substring tests decide; any other text asks this pattern.
_GRADER_WORDS = ("a.i.", "llm", "language model", "automat", "grader", "grading", "evaluator", "assessor", "scorer")
_AI_END = re.compile(r"ai(?![0-9A-Za-z_])")  # `\w` after it, on ASCII (_word_char)
_GRADER_NAMED = re.compile(r"\b(?:ai\b|a\.i\.|llm|language model|automat|grader|grading|evaluator|assessor|scorer)",
                           re.IGNORECASE)


# The only non-ASCII characters IGNORECASE matches to an ASCII letter (re's documentation). Text
# without them folds like ASCII text for what the gates test: a match of their words and patterns
# (ASCII letters, whitespace, digits, punctuation, no word boundary) is in the casefolded text too.
_ASCII_LOOKALIKES = ("\u0130", "\u0131", "\u017f", "\u212a")


def folds_like_ascii(answer: str) -> bool:
    return answer.isascii() or not any(map(answer.__contains__, _ASCII_LOOKALIKES))


def _names_a_grader(answer: str, low: str, folds: bool = True) -> bool:
    if not answer.isascii():
        # the regex costs ~30 us on non-ASCII text; most such answers lack every word it needs
        if folds and "ai" not in low and not any(map(low.__contains__, _GRADER_WORDS)):
            return False
        return _GRADER_NAMED.search(answer) is not None
    if any(map(low.__contains__, _GRADER_WORDS)):
        return True
    # "ai" ends many words ("explain", "maintain"): a search that needs no word character after it
    # leaves few candidates to look behind, where a loop over every "ai" cost as much as all the gates
    return any(not _word_char(low, m.start() - 1) for m in _AI_END.finditer(low))


def _gate_open(gate: tuple[tuple[str, ...], ...], low: str) -> bool:
    """Every group has a word in the text. Loops, not all(any(...)): this runs for every pattern
    of every answer, and two generators per pattern cost more than the substring tests."""
    for group in gate:
        for word in group:
            if word in low:
                break
        else:
            return False
    return True


def _finditer(rx: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """`rx.finditer(text)`. A pattern that opens with `^` (MULTILINE: the text's start or just after
    a line break) can match only there, so it is tried at those few places: a scan of every position
    cost an end-of-answer marker pattern, which has no gate, as much as all the gates together.
    (None of these patterns matches the empty string, so finditer's rule for one does not arise.)"""
    if not rx.pattern.startswith("^"):
        yield from rx.finditer(text)
        return
    at, done = 0, 0
    while at >= 0:
        if at >= done and (m := rx.match(text, at)) is not None:
            yield m
            done = m.end()
        nl = text.find("\n", at)
        at = nl + 1 if nl >= 0 else -1


def _word_char(text: str, i: int) -> bool:
    return 0 <= i < len(text) and (text[i].isalnum() or text[i] == "_")  # `\w`, on ASCII


_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")


@dataclass(frozen=True)
class InjectionHit:
    kind: str
    start: int
    end: int  # the span whose evidence earns nothing (the match, its sentence, or the rest of its line)
    text: str  # the matched text itself, shortened for display


def _reach(answer: str, m: re.Match[str], reach: str) -> tuple[int, int]:
    start, end = m.start(), m.end()
    if reach == "match":
        return start, end
    if reach == "line":
        stop = answer.find("\n", end)  # a fake turn runs from its label to the end of its line
        return start, stop if stop >= 0 else len(answer)
    before = [x.end() for x in _SENTENCE_END.finditer(answer, 0, start)]
    after = _SENTENCE_END.search(answer, end)
    return (before[-1] if before else 0), (after.end() if after else len(answer))


def find_injections(answer: str) -> list[InjectionHit]:
    """Every stretch of the answer that addresses the grader rather than the question."""
    return list(_find_injections(answer))


@lru_cache(maxsize=64)  # the offline grader and finalize both ask, for the same answer
def _find_injections(answer: str) -> tuple[InjectionHit, ...]:
    if not needs_skeleton(answer):
        found = [InjectionHit(kind, start, end, _shown(answer[a:b])) for kind, a, b, start, end in _scan(answer)]
    else:
        # Look-alike letters, fullwidth forms, zero-width joiners ("İgnore", "ignоre", "ig\u200dnore")
        # are folded once (evidence.skeleton) so every gate and pattern sees the same text; each span
        # found there is mapped back, so what is reported and masked is the answer's own text.
        text, where = skeleton(answer)
        found = []
        for kind, a, b, start, end in _scan(text):
            a, b = original_span(where, a, b)
            found.append(InjectionHit(kind, *original_span(where, start, end), _shown(answer[a:b])))
    return tuple(sorted(found, key=lambda h: (h.start, h.end)))


def _shown(matched: str) -> str:
    text = " ".join(matched.split())
    return text if len(text) <= 80 else text[:77] + "…"


def _scan(answer: str) -> list[tuple[str, int, int, int, int]]:
    """(kind, match start, match end, span start, span end) of every pattern's matches."""
    low = answer.casefold()
    folds = folds_like_ascii(answer)
    ascii_gates = _ASCII_GATES if folds else {}
    hits: list[tuple[str, int, int, int, int]] = []
    grader_named: bool | None = None
    for n, ((kind, rx, reach), gate) in enumerate(zip(_PATTERNS, _GATES)):
        if n in ascii_gates and not (_gate_open(ascii_gates[n][0], low) and ascii_gates[n][1].search(low)):
            continue
        if gate == "grader":
            if grader_named is None:
                grader_named = _names_a_grader(answer, low, folds)
            if not grader_named:
                continue
        elif gate is not None and not _gate_open(gate, low):
            continue
        fast = _LOWER_PATTERNS[n] if answer.isascii() else None
        for m in _finditer(fast, low) if fast is not None else _finditer(rx, answer):
            if not answer[m.start():m.end()].strip():
                continue
            hits.append((kind, m.start(), m.end(), *_reach(answer, m, reach)))
    return hits


def mask_injections(answer: str, hits: list[InjectionHit] | None = None) -> str:
    """The answer with every injection span blanked out (same length, so offsets still line up);
    a quote that only occurs in a blanked span is no longer found in it."""
    hits = find_injections(answer) if hits is None else hits
    if not hits:
        return answer
    chars = list(answer)
    for h in hits:
        for i in range(h.start, h.end):
            if chars[i] != "\n":
                chars[i] = "\x00"
    return "".join(chars)
