"""Which grades a person should check, and why: the review flags and their thresholds.

Every threshold is here and nowhere else (README "Review flags" documents them). The checks
are pure functions over a finished Grade and the answer text; grading.py runs the second
(offline) grader and hands its verdict in.

Text aimed at the grader (`injection_attempt`) is found by injection_scan.py's generic patterns.
"""

from __future__ import annotations

from .injection_scan import InjectionHit, find_injections
from .models import CodeTestResult, Grade, Review, Rubric
from .scoring import BANDS, CORE_SHARE, ESSENTIAL_CAP, EXTRA_ESSENTIAL_SHARE, WHOLE_ANSWER, code_core_passed

# ---------------------------------------------------------------------------------- thresholds
BAND_DISTANCE = 2  # graders_disagree: the offline grader's band is this many bands away, or more
UNSTABLE_SPREAD = 20.0  # unstable: max − min of the --samples scores, in points
NEAR_BOUNDARY = 3.0  # near_boundary: the score is within this many points of a band edge
# code_conflict: the grader and the tests disagree on whether the code is correct — one says
# missing (a main case fails, or nothing could run), the other covered or partial. Covered vs partial
# (only an edge case fails) is not a conflict: the tests' verdict scores it either way.
# off_topic: at least this share of the key points the answer earned (and at least OFF_TOPIC_MIN of
# them) rest on clauses whose other words are outside the field (the offline grader marks them;
# graders/topicality.py) — cue words reused in sentences about something else.
OFF_TOPIC_SHARE = 0.5
OFF_TOPIC_MIN = 2
OFF_TOPIC_MARK = "off-topic words:"  # = graders.topicality.MARKER (core may not import graders)
# code_unverified: the answer's code needs a widely used library the sandbox lacks (code/needs.py),
# so it was not run and its correctness rests on the grader's reading: a person should check it.
# The start of a not-run result's error when the code needs a library the sandbox lacks
# (code/needs.py writes it; the review, the LLM prompt and the batch cache read it).
NOT_VERIFIED_MARK = "code not verified here"


def not_verified_reason(test: CodeTestResult) -> str | None:
    """Why this not-run result's code was not run here ("it needs nltk, ..."), or None when it is
    not that case (another not-run, or a run)."""
    if test.status == "not-run" and test.error.startswith(NOT_VERIFIED_MARK):
        return test.error[len(NOT_VERIFIED_MARK):].lstrip(": ")
    return None
BAND_EDGES: tuple[float, ...] = tuple(t for t, _ in BANDS if t > 0)  # 80, 60, 30
BAND_ORDER: tuple[str, ...] = tuple(name for _, name in BANDS)  # strong … poor
REASONS: tuple[str, ...] = ("injection_attempt", "graders_disagree", "code_conflict", "code_unverified", "off_topic",
                            "unverified_evidence", "unstable", "near_boundary")  # also the order of severity used to sort the review queue

# ---------------------------------------------------------------------------------- the flags


def band_distance(a: str | None, b: str | None) -> int:
    if a not in BAND_ORDER or b not in BAND_ORDER:
        return 0
    return abs(BAND_ORDER.index(a) - BAND_ORDER.index(b))


def nearest_edge(score: float) -> tuple[float, float]:
    """(edge, distance) of the band edge closest to the score."""
    edge = min(BAND_EDGES, key=lambda e: abs(score - e))
    return edge, abs(score - edge)


def held_at_cap(grade: Grade, rubric: Rubric | None) -> bool:
    """The score is the essential-point cap because an essential point is missing: its closeness
    to the 60 edge is then the cap's doing, not a close call between two bands."""
    if rubric is None or grade.score != ESSENTIAL_CAP:
        return False
    status = {j.key_point: j.status for j in grade.judgments}
    return code_core_passed(grade.code_tests) or any(kp.essential and status.get(kp.id, "missing") == "missing"
                                                     for kp in rubric.key_points)


def held_at_core(grade: Grade, rubric: Rubric | None) -> bool:
    """The score is CORE_SHARE (plus a share of EXTRA_ESSENTIAL_SHARE for the other essential
    points) because the essential points are stated and nothing else: the core alone is worth
    exactly the weak band's lower edge by rule, so sitting on that edge is no close call (a new
    user's batch flagged 600 of 3,000 answers for this alone)."""
    if rubric is None or grade.score is None or rubric.score_rule == "coverage" \
            or not CORE_SHARE <= grade.score <= CORE_SHARE + EXTRA_ESSENTIAL_SHARE:
        return False
    status = {j.key_point: j.status for j in grade.judgments}
    return all(status.get(kp.id, "missing") == "missing" for kp in rubric.key_points if not kp.essential)


def held_by_rule(grade: Grade, rubric: Rubric | None) -> bool:
    """Passing code sits on the adequate edge by rule, not by a close call: when running the code
    decided every correctness point as covered (all tests passed), the answer is at least adequate
    because of the tests, and a score just above the 60 edge (a correct function alone is
    CORE_SHARE + the edge-case points + a little) is that rule's floor, like held_at_cap for 59."""
    if rubric is None or not grade.code_tests or not rubric.correctness_points or grade.score is None:
        return False
    if not 60.0 <= grade.score <= 60.0 + NEAR_BOUNDARY or any(t.status != "passed" for t in grade.code_tests):
        return False
    status = {j.key_point: j for j in grade.judgments}
    return all((j := status.get(kp)) is not None and j.status == "covered" and j.verified
               and j.comment.startswith("Verified by running the code") for kp in rubric.correctness_points)


def assess(grade: Grade, answer: str, *, rubric: Rubric | None = None, second_opinion: dict | None = None,
           injections: list[InjectionHit] | None = None) -> Review:
    """The review flags of a graded result. `second_opinion` is the offline grader's
    {"grader", "score", "band"} when another grader graded."""
    if grade.outcome != "graded" or grade.score is None:
        return Review()  # skipped and grader_error have their own outcome
    from .evidence import quote_found

    details: dict[str, str] = {}
    hits = find_injections(answer) if injections is None else injections
    if hits:
        kinds = sorted({h.kind.replace("_", " ") for h in hits})
        details["injection_attempt"] = (f"text aimed at the grader ({', '.join(kinds)}): “{hits[0].text}”"
                                        + (f" and {len(hits) - 1} more" if len(hits) > 1 else "")
                                        + "; evidence quoted from it earned nothing")
    if second_opinion and second_opinion.get("band"):
        apart = band_distance(grade.band, second_opinion["band"])
        if apart >= BAND_DISTANCE:
            details["graders_disagree"] = (f"{grade.grader} says {grade.score:g} ({grade.band}), the {second_opinion.get('grader', 'offline')} "
                                           f"grader {second_opinion.get('score', 0):g} ({second_opinion['band']}): {apart} bands apart")
    conflicts = []
    if grade.code_tests:
        by_tests = set(rubric.correctness_points) if rubric is not None else \
            {j.key_point for j in grade.judgments if j.comment.startswith("Verified by running the code")}
        for j in grade.judgments:
            if j.key_point in by_tests and j.claimed_status and (j.claimed_status == "missing") != (j.status == "missing"):
                conflicts.append(f"{j.key_point}: grader said {j.claimed_status}, the tests say {j.status}")
    if conflicts:
        failing = next((t for t in grade.code_tests if t.status != "passed"), None)
        why = (failing.error or f"{failing.call}: {failing.status}") if failing else ""
        details["code_conflict"] = "; ".join(conflicts) + (f" ({why[:100]})" if why else "")
    why_not_run = next(filter(None, map(not_verified_reason, grade.code_tests)), None)
    if why_not_run is not None:
        details["code_unverified"] = ("the code was not run: " + why_not_run
                                      + "; its correctness is the grader's reading of the text: check it by hand")
    unverified = [j.key_point for j in grade.judgments
                  if (j.claimed_status or j.status) in ("covered", "partial") and not j.verified
                  and not (j.evidence.strip() and quote_found(j.evidence, answer))]
    if unverified:
        details["unverified_evidence"] = "quote not found in the answer for " + ", ".join(unverified)
    spread = (grade.samples or {}).get("spread")
    if spread is not None and spread >= UNSTABLE_SPREAD:
        s = grade.samples or {}
        details["unstable"] = f"{s.get('n')} samples ranged {s.get('min', 0):g}–{s.get('max', 0):g} (spread {spread:g})"
    earned = [j for j in grade.judgments if j.status in ("covered", "partial")]
    off = [j.key_point for j in earned if OFF_TOPIC_MARK in j.comment]
    if len(off) >= OFF_TOPIC_MIN and len(off) >= OFF_TOPIC_SHARE * len(earned):
        details["off_topic"] = (f"{len(off)} of the {len(earned)} points earned rest on sentences about something else "
                                f"({', '.join(off[:3])}{'…' if len(off) > 3 else ''}); each earned partial at most")
    # the whole answer judged to address another question, or to be a keyword list: held at a cap on
    # no quote, so a person looks
    whole = next((m for m in grade.misconceptions if m.id in WHOLE_ANSWER), None)
    if whole is not None:
        details["off_topic"] = whole.claim or "the answer addresses another question"
    edge, distance = nearest_edge(grade.score)
    if distance <= NEAR_BOUNDARY and not held_at_cap(grade, rubric) and not held_by_rule(grade, rubric) \
            and not held_at_core(grade, rubric):
        details["near_boundary"] = f"{grade.score:g} is {distance:g} point{'s' if distance != 1 else ''} from the {edge:g} band edge"
    reasons = [r for r in REASONS if r in details]
    return Review(needed=bool(reasons), reasons=reasons, details={r: details[r] for r in reasons},  # type: ignore[arg-type]
                  second_opinion=second_opinion)
