"""Data shapes shared by every module: rubrics in, judgments and grades out.

Nothing here talks to the network or the disk; every other module depends on this one.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Section = Literal["basic", "technical", "computer-vision", "nlp", "reinforcement-learning", "company"]
Kind = Literal["concept", "coding", "design"]
Difficulty = Literal["easy", "medium", "hard"]
Status = Literal["covered", "partial", "missing"]
Outcome = Literal["graded", "grader_error", "skipped"]
Band = Literal["strong", "adequate", "weak", "poor"]
M = TypeVar("M", bound=BaseModel)

SECTIONS: tuple[str, ...] = ("basic", "technical", "computer-vision", "nlp", "reinforcement-learning", "company")
STATUS_ORDER: tuple[str, ...] = ("missing", "partial", "covered")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- rubric


class KeyPoint(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    point: str = Field(min_length=1)
    weight: float = Field(gt=0)
    essential: bool = False
    cues: list[str] = Field(default_factory=list)


# Misconception ids the graders report about a whole answer (scoring.OFF_TOPIC): a rubric's own
# misconception under that id would let an LLM's unquoted, unverified report of it hold the score.
RESERVED_MISCONCEPTION_IDS = frozenset({"off-topic", "keyword-list"})


class Misconception(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    claim: str = Field(min_length=1)
    penalty: float = Field(ge=0, le=100)
    cues: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v in RESERVED_MISCONCEPTION_IDS:
            raise ValueError(f"{v!r} is reserved for the graders' own flag; give the misconception another id")
        return v


class Erratum(_Strict):
    article_says: str = Field(min_length=1)
    correction: str = Field(min_length=1)


class CodeTest(_Strict):
    """One call of the candidate's function: `call` is a Python expression using the
    rubric's function name, `expected` the value it must equal."""

    call: str = Field(min_length=1)
    expected: Any = None
    note: str = ""
    # An edge case (empty input, lengths that differ, odd whitespace): these decide the rubric's
    # edge_case_points, and failing only these still earns partial correctness.
    edge: bool = False


class HiddenTests(_Strict):
    """Cases generated afresh for every answer (from a seed) by a named generator in
    mlgrade.code.hidden, their expected values computed by running `reference_solution`."""

    generator: Literal["rotations", "sentences"]
    count: int = Field(default=8, ge=1, le=40)


class FollowUp(_Strict):
    """A question the interviewer asks after the main answer. `targets` name the main question's
    key points it probes (how the offline path picks it for a weak answer); its own key points and
    misconceptions grade the answer to it. A plain string in YAML is a follow-up with neither:
    askable, not gradable (derived and custom rubrics)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str = Field(min_length=1)
    targets: list[str] = Field(default_factory=list)
    key_points: list[KeyPoint] = Field(default_factory=list)
    misconceptions: list[Misconception] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"question": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _consistent(self) -> FollowUp:
        for label, ids in (("key-point", [kp.id for kp in self.key_points]),
                           ("misconception", [m.id for m in self.misconceptions])):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"duplicate {label} id {dupes[0]!r} in the follow-up {self.question!r}")
        if self.key_points and not any(kp.essential for kp in self.key_points):
            # the score's core is an essential point (scoring.py): a gradable follow-up needs one
            raise ValueError(f"no key point of the follow-up {self.question!r} is marked essential")
        return self

    @property
    def gradable(self) -> bool:
        return bool(self.key_points)


class Rubric(_Strict):
    # frozen: a rubric's content hash is memoised and keys caches, so it must not change in place
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    number: int = Field(ge=0)
    section: Section
    kind: Kind
    difficulty: Difficulty
    question: str = Field(min_length=1)
    model_answer: str = Field(min_length=1)
    key_points: list[KeyPoint] = Field(min_length=1)
    misconceptions: list[Misconception] = Field(default_factory=list)
    errata: list[Erratum] = Field(default_factory=list)
    follow_ups: list[FollowUp] = Field(default_factory=list)
    # How scoring.py turns judgments into a score: "core" (the interviewers' scale: the central
    # idea is worth 30, depth the rest) for authored rubrics; "coverage" (weighted share of the
    # points) for rubrics derived from a reference answer, whose "essential" point is a guess.
    score_rule: Literal["core", "coverage"] = "core"
    function: str | None = None
    tests: list[CodeTest] = Field(default_factory=list)
    # Key points whose status is decided by running the candidate's code (coding kind).
    correctness_points: list[str] = Field(default_factory=list)
    # Key points decided by the `edge: true` tests when the code passes its other tests.
    edge_case_points: list[str] = Field(default_factory=list)
    reference_solution: str | None = None  # Python defining `function`; run in the sandbox only
    hidden_tests: HiddenTests | None = None

    @field_validator("key_points")
    @classmethod
    def _unique_key_points(cls, v: list[KeyPoint]) -> list[KeyPoint]:
        seen: set[str] = set()
        for kp in v:
            if kp.id in seen:
                raise ValueError(f"duplicate key-point id {kp.id!r}")
            seen.add(kp.id)
        if not any(kp.essential for kp in v):
            raise ValueError("no key point is marked essential: at least one must be")
        return v

    @field_validator("misconceptions")
    @classmethod
    def _unique_misconceptions(cls, v: list[Misconception]) -> list[Misconception]:
        ids = [m.id for m in v]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate misconception id {dupes[0]!r}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        import re

        m = re.fullmatch(r"q(\d+)", self.id)
        if m and int(m.group(1)) != self.number:
            raise ValueError(f"id {self.id!r} does not match number {self.number}")
        kp_ids = {kp.id for kp in self.key_points}
        for cp in self.correctness_points:
            if cp not in kp_ids:
                raise ValueError(f"correctness_points names unknown key point {cp!r}")
        for ep in self.edge_case_points:
            if ep not in kp_ids:
                raise ValueError(f"edge_case_points names unknown key point {ep!r}")
        if self.hidden_tests and not (self.function and self.reference_solution):
            raise ValueError("hidden_tests need a `function` and a `reference_solution`")
        if self.kind == "coding" and self.tests and not self.function:
            raise ValueError("a coding rubric with tests must name its `function`")
        for f in self.follow_ups:
            for t in f.targets:
                if t not in kp_ids:
                    raise ValueError(f"follow-up {f.question!r} targets unknown key point {t!r}")
        return self

    def key_point(self, kp_id: str) -> KeyPoint | None:
        return next((kp for kp in self.key_points if kp.id == kp_id), None)

    def misconception(self, m_id: str) -> Misconception | None:
        return next((m for m in self.misconceptions if m.id == m_id), None)

    def follow_up(self, question: str) -> FollowUp | None:
        """The rubric's follow-up with this question text (spacing and case aside), if any."""
        key = " ".join(question.split()).casefold()
        return next((f for f in self.follow_ups if " ".join(f.question.split()).casefold() == key), None)


_set = object.__setattr__


def updated(model: M, **changes: Any) -> M:
    """`model.model_copy(update=changes)`: the same shallow copy with the same fields set, and, like
    it, no validation of `changes` (callers pass values of the fields' types). Half its cost: finalize
    copies every judgment and misconception of every grade. A model with extra or private data
    takes pydantic's own path."""
    if model.__pydantic_extra__ is not None or model.__pydantic_private__ is not None:
        return model.model_copy(update=changes)
    cls = type(model)
    copy = cls.__new__(cls)
    values = model.__dict__.copy()
    values.update(changes)
    _set(copy, "__dict__", values)
    _set(copy, "__pydantic_extra__", None)
    _set(copy, "__pydantic_fields_set__", model.__pydantic_fields_set__ | changes.keys())
    _set(copy, "__pydantic_private__", None)
    return copy


_FIELDS: dict[type, tuple[dict[str, Any], tuple[tuple[str, Any], ...]] | None] = {}
_IMMUTABLE = (str, int, float, bool, type(None), tuple, frozenset)


def constructed(cls: type[M], **values: Any) -> M:
    """`cls(**values)` without validation, for callers whose values are already of the fields'
    types and that name every required field (the offline grader's judgments, built for every key
    point of every answer): what `model_construct` does, at a fraction of its cost (and half that
    of validating). Models with extra or private data, aliases or a mutable plain default take
    pydantic's own path."""
    known = _FIELDS.get(cls, ())
    if known == ():
        known = _FIELDS[cls] = None if cls.model_config.get("extra") == "allow" or cls.__private_attributes__ or any(
            f.alias not in (None, name)
            or (not f.is_required() and f.default_factory is None and not isinstance(f.default, _IMMUTABLE))
            for name, f in cls.model_fields.items()) else (
            # every field in its order (a required one's place held by None until `values` fill it)
            {name: None if f.is_required() or f.default_factory is not None else f.default
             for name, f in cls.model_fields.items()},
            tuple((name, f.default_factory) for name, f in cls.model_fields.items() if f.default_factory is not None))
    if known is None:
        return cls.model_construct(**values)
    template, factories = known
    data = template.copy()
    data.update(values)  # keys already there keep their place: the fields' order, as validation leaves it
    for name, factory in factories:
        if name not in values:
            data[name] = factory()
    model = cls.__new__(cls)
    _set(model, "__dict__", data)
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_fields_set__", set(values))
    _set(model, "__pydantic_private__", None)
    return model


# --------------------------------------------------------------------------- judgments


class Judgment(BaseModel):
    """The verdict on one key point, after evidence has been checked in code."""

    key_point: str
    status: Status
    evidence: str = ""
    verified: bool = True
    comment: str = ""
    claimed_status: Status | None = None  # what the grader said before the evidence check


class MisconceptionFound(BaseModel):
    id: str  # a rubric misconception id, or "new-…" for one the grader named itself
    claim: str = ""
    evidence: str = ""
    verified: bool = True
    penalty: float = 0.0


class CodeTestResult(BaseModel):
    """One call of the candidate's function. `call` and `expected` are mlgrade's (from the rubric,
    or generated and computed by the reference solution when `hidden`); `got` and `error` come
    from the candidate's code and are untrusted text."""

    call: str
    status: Literal["passed", "failed", "error", "timeout", "not-run"]
    expected: str = ""
    got: str = ""
    error: str = ""
    hidden: bool = False
    edge: bool = False


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )


class Assessment(BaseModel):
    """What a grader (LLM, offline or fake) hands back before code checks and scores it."""

    judgments: list[Judgment]
    misconceptions: list[MisconceptionFound] = Field(default_factory=list)
    strengths: list[str] = Field(default_factory=list)
    improvements: list[str] = Field(default_factory=list)
    follow_up: str = ""
    model: str = ""
    usage: Usage = Field(default_factory=Usage)
    attempts: int = 1
    prompt_hash: str = ""
    raw_reply: str | None = None


ReviewReason = Literal["graders_disagree", "unstable", "unverified_evidence", "code_conflict", "code_unverified",
                       "injection_attempt", "off_topic", "near_boundary"]


class Review(BaseModel):
    """Whether a person should check this grade, and why (thresholds in mlgrade.review).
    Older results lines have no `review`: they load as not needing one."""

    needed: bool = False
    reasons: list[ReviewReason] = Field(default_factory=list)
    details: dict[str, str] = Field(default_factory=dict)  # reason -> one line a reviewer can act on
    # the independent offline grader's verdict when another grader graded (graders_disagree)
    second_opinion: dict[str, Any] | None = None


class Grade(BaseModel):
    """The JSON contract of `mlgrade grade --json` and of every batch output line."""

    question_id: str
    outcome: Outcome
    score: float | None = None
    band: Band | None = None
    judgments: list[Judgment] = Field(default_factory=list)
    misconceptions: list[MisconceptionFound] = Field(default_factory=list)
    strengths: list[str] = Field(default_factory=list)
    improvements: list[str] = Field(default_factory=list)
    follow_up: str = ""
    error: str | None = None
    raw_reply: str | None = None
    grader: str = ""
    model: str = ""
    usage: Usage = Field(default_factory=Usage)
    latency_ms: int = 0
    cost_usd: float | None = None
    rubric_hash: str = ""
    prompt_hash: str = ""
    attempts: int = 0
    code_tests: list[CodeTestResult] = Field(default_factory=list)
    samples: dict[str, Any] | None = None  # --samples N: scores, median, spread, majority
    review: Review = Field(default_factory=Review)

    @field_validator("error", "raw_reply")
    @classmethod
    def _no_secrets(cls, value: str | None) -> str | None:
        # every Grade is shown or stored somewhere: an endpoint echoing the key must not leak it
        from .errors import redact

        return redact(value)

    @model_validator(mode="after")
    def _failure_is_not_a_score(self) -> Grade:
        if self.outcome != "graded" and (self.score is not None or self.band is not None):
            raise ValueError(f"a {self.outcome} grade cannot carry a score")
        if self.outcome == "graded" and self.score is None:
            raise ValueError("a graded grade needs a score")
        if self.outcome != "graded" and self.review.needed:
            raise ValueError(f"a {self.outcome} result has its own outcome; it cannot need review")
        return self

    @property
    def ok(self) -> bool:
        return self.outcome == "graded"
