"""Rubrics derived from a question and a reference answer, so mlgrade can grade any question.

Two ways, one output (a valid `Rubric`, cached in the store by the hash of its inputs):

- offline: the reference is split into clauses and then into short claims at commas and
  connectives; each claim with content words becomes a key point weighted by its content words
  (words that merely repeat the question count less), the heaviest one essential.
- llm: the endpoint is asked for key points, misconceptions and follow-ups as structured output
  (the same retry/validation machinery as grading: `structured.call_structured`).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from ..errors import UsageError
from ..models import KeyPoint, Rubric
from ..graders.textmatch import clauses, tokenize

if TYPE_CHECKING:
    from ..config import Settings
    from ..store import Store

DERIVE_VERSION = "derive-v3"  # v3: claims keep the reference's own text (brackets, punctuation)
MAX_POINTS = 8
QUESTION_WORD_WEIGHT = 0.3
_SPLIT = re.compile(r"[,;:()\[\]]|\s(?:and|or|but|because|so|which|while|whereas|then|since|thus|hence|i\.e\.|e\.g\.)\s",
                    re.IGNORECASE)


def derive_key(question: str, reference_answer: str, kind: str, model: str = "") -> str:
    payload = json.dumps([DERIVE_VERSION, kind, model, question.strip(), reference_answer.strip()], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _slug(words: list[str], taken: set[str]) -> str:
    base = "-".join(re.sub(r"[^a-z0-9]+", "", w) for w in words[:3]).strip("-") or "point"
    base = re.sub(r"-+", "-", base)
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug)
    return slug


# Brackets attached to a word are part of a term ("1/(1-p)", "f(x)", "O(n)"), not an aside: no split inside.
_ATTACHED = re.compile(r"(?<=[^\s(\[])[(\[][^()\[\]]*[)\]]")
_EDGE = " \t\n,;:"


def _claim_spans(reference: str) -> list[tuple[int, int]]:
    """Clauses of the reference split further into short claims, as (start, end) offsets into it,
    so a claim (or two merged) is always the reference's own text, brackets and all; pieces
    without content words are glued onto the next piece so no words are lost."""
    out: list[tuple[int, int]] = []
    for c in clauses(reference):
        text = reference[c.start:c.end]
        attached = [m.span() for m in _ATTACHED.finditer(text)]
        cuts = [m.span() for m in _SPLIT.finditer(text) if not any(a <= m.start() < b for a, b in attached)]
        bounds = [0, *(x for span in cuts for x in span), len(text)]
        pending: int | None = None
        for start, end in zip(bounds[::2], bounds[1::2]):
            start = pending if pending is not None else start
            piece = text[start:end]
            if not any(not t.stop and len(t.text) > 1 for t in tokenize(piece)):
                pending = start
                continue
            out.append((c.start + start, c.start + end))
            pending = None
        if pending is not None and out and text[pending:].strip(_EDGE + "()[]."):  # words, not a lone ")"
            out[-1] = (out[-1][0], c.end)
    return out


def _text(reference: str, span: tuple[int, int]) -> str:
    return " ".join(reference[span[0]:span[1]].strip(_EDGE).split())


def _claims(reference: str) -> list[str]:
    return [_text(reference, span) for span in _claim_spans(reference)]


def _weight(text: str, question_stems: set[str]) -> float:
    seen: set[str] = set()
    w = 0.0
    for t in tokenize(text):
        if t.stop or len(t.text) < 2 or t.stem in seen:
            continue
        seen.add(t.stem)
        w += QUESTION_WORD_WEIGHT if t.stem in question_stems else 1.0
    return w


def derive_offline(question: str, reference_answer: str) -> Rubric:
    q = {t.stem for t in tokenize(question) if not t.stop}
    spans = _claim_spans(reference_answer)
    if not spans:
        raise UsageError("the reference answer has no content words to build a rubric from")
    claims = [_text(reference_answer, sp) for sp in spans]
    weights = [_weight(c, q) for c in claims]
    # Too many small claims make a noisy rubric: merge the lightest claim into a neighbour (as
    # the reference's text from the one's start to the other's end: its own punctuation kept).
    while len(claims) > MAX_POINTS:
        i = min(range(len(claims)), key=lambda k: weights[k])
        j = i - 1 if i == len(claims) - 1 or (i > 0 and weights[i - 1] <= weights[i + 1]) else i + 1
        a, b = sorted((i, j))
        spans[a:b + 1] = [(spans[a][0], spans[b][1])]
        claims[a:b + 1] = [_text(reference_answer, spans[a])]
        weights[a:b + 1] = [_weight(claims[a], q)]
    heaviest = max(range(len(claims)), key=lambda k: weights[k])
    taken: set[str] = set()
    points = []
    for k, (text, w) in enumerate(zip(claims, weights)):
        words = [t.text for t in tokenize(text) if not t.stop and len(t.text) > 1]
        # No cues: the claim is the reference's own words, which the grader matches directly
        # (stemmed, typo-tolerant); single-word cues would only count the same words twice.
        points.append(KeyPoint(id=_slug(words, taken), point=text[:1].upper() + text[1:],
                               weight=max(0.5, round(w * 2) / 2), essential=k == heaviest))
    key = derive_key(question, reference_answer, "offline")
    return Rubric(id=f"d-{key[:8]}", number=0, section="technical", kind="concept", difficulty="medium",
                  question=question.strip(), model_answer=reference_answer.strip(), key_points=points,
                  score_rule="coverage",
                  follow_ups=[f"Can you explain in more detail why {_lower(claims[heaviest])}?",
                              "Can you give a concrete example that illustrates your answer?"])


def _lower(text: str) -> str:
    text = text.strip().rstrip(".?!")
    return text[:1].lower() + text[1:]


# --------------------------------------------------------------------------- LLM path


class _DerivedPoint(BaseModel):
    id: str = Field(description="short kebab-case id, e.g. 'random-zeroing'")
    point: str = Field(description="one sentence: what a good answer must say")
    weight: float = Field(description="relative importance, 1 to 3")
    essential: bool
    cues: list[str] = Field(description="2-6 short phrases whose presence suggests the point is made")


class _DerivedMisconception(BaseModel):
    id: str
    claim: str
    penalty: float = Field(description="5 to 20")


class _DerivedRubric(BaseModel):
    key_points: list[_DerivedPoint]
    misconceptions: list[_DerivedMisconception]
    follow_ups: list[str]


_SYSTEM = (
    "You write grading rubrics for short free-text answers. From the question and the reference answer, "
    "list the 2-8 distinct key points a good answer must make (at least one essential), typical "
    "misconceptions a student might state (may be empty), and 1-3 follow-up questions. Key points "
    "restate the reference's claims in your own words; do not invent facts that the reference does not support."
)


def _slugify(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-") or "point"


async def derive_llm(question: str, reference_answer: str, settings: Settings) -> Rubric:
    from ..rubrics import parse_rubric
    from ..graders.structured import call_structured

    messages = [{"role": "system", "content": _SYSTEM},
                {"role": "user", "content": f"Question:\n{question.strip()}\n\nReference answer:\n{reference_answer.strip()}"}]
    reply = await call_structured(settings, messages, _DerivedRubric, schema_name="rubric")
    d = reply.value
    taken: set[str] = set()
    points = []
    for p in d.key_points:
        pid = _slugify(p.id)
        while pid in taken:
            pid += "-x"
        taken.add(pid)
        points.append({"id": pid, "point": p.point, "weight": min(3.0, max(0.5, p.weight)), "essential": p.essential,
                       "cues": p.cues})
    if points and not any(p["essential"] for p in points):
        max(points, key=lambda p: p["weight"])["essential"] = True
    miscs = []
    for m in d.misconceptions:
        mid = _slugify(m.id)
        if mid not in {x["id"] for x in miscs}:
            miscs.append({"id": mid, "claim": m.claim, "penalty": min(30.0, max(0.0, m.penalty))})
    key = derive_key(question, reference_answer, "llm", settings.model)
    data = {"id": f"d-{key[:8]}", "number": 0, "section": "technical", "kind": "concept", "difficulty": "medium",
            "question": question.strip(), "model_answer": reference_answer.strip(), "key_points": points,
            "misconceptions": miscs, "follow_ups": [f for f in d.follow_ups if f.strip()][:3],
            "score_rule": "coverage"}
    return parse_rubric(data, "derived rubric (llm)")


# --------------------------------------------------------------------------- entry points


def _cached_rubric(cached: str, key: str) -> Rubric | None:
    """The rubric a previous run stored, or None when the stored text no longer parses (a damaged or
    edited store): derived again then. Read like every YAML mlgrade reads: aliases never expanded."""
    import yaml

    from ..errors import RubricError
    from ..rubrics import parse_rubric
    from ..textfiles import load_yaml

    try:
        return parse_rubric(load_yaml(cached), f"cached derived rubric {key[:8]}")
    except (yaml.YAMLError, RubricError, RecursionError, ValueError, TypeError):
        return None


def rubric_yaml(rubric: Rubric) -> str:
    import yaml

    return yaml.safe_dump(rubric.model_dump(mode="json", exclude_defaults=False), sort_keys=False, allow_unicode=True,
                          width=100)


async def aderive_rubric(question: str, reference_answer: str, *, settings: Settings | None = None,
                         grader_kind: str | None = None, store: Store | None = None, use_cache: bool = True) -> Rubric:
    """A rubric for any question from its reference answer. grader_kind: "offline" or "llm"
    (default: the configured grader). Cached in the store by the hash of the inputs."""
    from ..config import load_settings
    from ..rubrics import parse_rubric

    if not question.strip() or not reference_answer.strip():
        raise UsageError("deriving a rubric needs both a question and a reference answer")
    settings = settings or load_settings()
    kind = grader_kind or settings.grader_kind
    if kind not in ("offline", "llm"):
        raise UsageError(f"unknown grader {kind!r}: choose offline or llm")
    key = derive_key(question, reference_answer, kind, settings.model if kind == "llm" else "")
    own_store = store is None and use_cache
    if own_store:
        from ..store import Store as _Store

        store = _Store.for_settings(settings)
    try:
        if use_cache and store is not None:
            cached = store.derived_get(key)
            if cached is not None:
                reused = _cached_rubric(cached, key)
                if reused is not None:
                    return reused
        rubric = derive_offline(question, reference_answer) if kind == "offline" else \
            await derive_llm(question, reference_answer, settings)
        if use_cache and store is not None:
            store.derived_put(key, rubric_yaml(rubric))
        return rubric
    finally:
        if own_store and store is not None:
            store.close()


def derive_rubric(question: str, reference_answer: str, *, settings: Settings | None = None,
                  grader_kind: str | None = None, store: Store | None = None, use_cache: bool = True) -> Rubric:
    """Synchronous `aderive_rubric`.

    >>> r = derive_rubric("What does a prototype do?", "It simulates parts of the product.", grader_kind="offline")
    >>> r.id.startswith("d-")
    True
    """
    import asyncio

    return asyncio.run(aderive_rubric(question, reference_answer, settings=settings, grader_kind=grader_kind,
                                      store=store, use_cache=use_cache))


def describe(rubric: Rubric) -> dict[str, Any]:
    return {"id": rubric.id, "key_points": len(rubric.key_points), "essential": [kp.id for kp in rubric.key_points if kp.essential]}
