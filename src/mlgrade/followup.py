"""Follow-up questions: which one to ask after a graded answer, and grading the answer to it.

A follow-up answer is graded as an answer to the follow-up question, against the follow-up's own
key points (written in the rubric), in the context of the main question and the first answer.
It goes through the same pipeline as any answer (grading.finalize: evidence checked, score in
code) on a rubric-like view of the follow-up, so a follow-up grade is an ordinary Grade.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .config import Settings, load_settings
from .models import FollowUp, Grade, Rubric

if TYPE_CHECKING:
    from .grading import Grader

NOT_GRADABLE = "not graded: this rubric has no key points for this follow-up"

_VIEWS: dict[tuple[str, str], Rubric] = {}


def follow_up_rubric(rubric: Rubric, follow_up: FollowUp) -> Rubric:
    """The rubric-like view that grades answers to `follow_up`: its question, key points and
    misconceptions. The main question's misconceptions are not added wholesale: in a follow-up
    context a correct statement can match one (saying self-supervised pretraining needs no labels
    is right, while "semi-supervised learning needs no labels" is wrong), so a follow-up lists the
    ones that apply to it. Memoised and kept alive: graders cache compiled rubrics by object id,
    which must not be reused by another view."""
    from .rubrics import rubric_hash

    if not follow_up.gradable:
        raise ValueError(NOT_GRADABLE)
    index = next((i for i, f in enumerate(rubric.follow_ups, 1) if f == follow_up), 0)
    key = (rubric_hash(rubric), follow_up.model_dump_json())
    view = _VIEWS.get(key)
    if view is None:
        view = Rubric(id=f"{rubric.id}-followup-{index or 'x'}", number=rubric.number, section=rubric.section,
                      kind="concept", difficulty=rubric.difficulty, question=follow_up.question,
                      model_answer=rubric.model_answer, key_points=follow_up.key_points,
                      misconceptions=follow_up.misconceptions,
                      errata=rubric.errata, score_rule=rubric.score_rule)
        if len(_VIEWS) > 1024:
            _VIEWS.clear()
        _VIEWS[key] = view
    return view


def choose_follow_up(rubric: Rubric, grade: Grade) -> FollowUp | None:
    """The follow-up to ask after `grade`, aimed at the weakest part of the answer.

    With the LLM grader, the grade's own follow-up when it is one of the rubric's (the grading
    prompt asks the model to copy one verbatim); otherwise the follow-up whose `targets` hold the
    heaviest key point the answer missed or left partial (essential and missing first among
    equals; between follow-ups aimed at it, the one covering more of what was missed). When no
    follow-up targets a gap (a strong answer, or follow-ups without targets), the grade's own
    follow-up if it is the rubric's, else the rubric's first. None when the rubric has none."""
    if not rubric.follow_ups:
        return None
    own = rubric.follow_up(grade.follow_up) if grade.follow_up else None
    if own is not None and grade.grader == "llm":
        return own
    status = {j.key_point: j.status for j in grade.judgments} if grade.ok else {}
    weak = [kp for kp in rubric.key_points if status.get(kp.id, "missing") != "covered"]
    weak.sort(key=lambda kp: (-kp.weight, not kp.essential, status.get(kp.id, "missing") != "missing"))
    gap = {kp.id: kp.weight * (1.0 if status.get(kp.id, "missing") == "missing" else 0.5) for kp in weak}
    for kp in weak:
        aimed = [f for f in rubric.follow_ups if kp.id in f.targets]
        if aimed:
            return max(aimed, key=lambda f: (f.gradable, sum(gap.get(t, 0.0) for t in f.targets)))
    return own or rubric.follow_ups[0]


async def agrade_follow_up(rubric: Rubric, follow_up: FollowUp, main_answer: str, answer: str, *,
                           settings: Settings | None = None, grader: Grader | None = None) -> Grade:
    """Async `grade_follow_up`."""
    from .graders.followup_llm import follow_up_grader
    from .grading import agrade_rubric, make_grader, skipped_grade

    settings = settings or load_settings()
    if not follow_up.gradable:
        return skipped_grade(rubric.id, NOT_GRADABLE, rubric=rubric)
    grader = follow_up_grader(grader or make_grader(settings), rubric, main_answer)
    grade = await agrade_rubric(follow_up_rubric(rubric, follow_up), answer, settings=settings, grader=grader)
    # the view is an internal name: callers file the grade under the question it follows up
    return grade.model_copy(update={"question_id": rubric.id})


def grade_follow_up(rubric: Rubric, follow_up: FollowUp, main_answer: str, answer: str, *,
                    settings: Settings | None = None, grader: Grader | None = None) -> Grade:
    """Grade `answer` as an answer to `follow_up` (one of `rubric`'s follow-ups), in the context of
    the main question and the candidate's first answer `main_answer`. Returns the same Grade as
    grade(): `question_id` is the main question's, `judgments` are the follow-up's key points, and
    `rubric_hash` identifies the follow-up view. A follow-up without key points (derived and
    custom rubrics) gives outcome "skipped" with the reason NOT_GRADABLE; an empty answer is
    skipped too; an answer over the size limit raises AnswerTooLong like grade().

    >>> from mlgrade import load_rubrics, grade, choose_follow_up, grade_follow_up
    >>> q05 = load_rubrics().get("q05")
    >>> first = "Only some models need it: k-NN compares distances, trees do not care."
    >>> fu = choose_follow_up(q05, grade("q05", first))  # doctest: +SKIP
    >>> grade_follow_up(q05, fu, first, "A tree splits on thresholds of one feature...")  # doctest: +SKIP
    """
    return asyncio.run(agrade_follow_up(rubric, follow_up, main_answer, answer, settings=settings, grader=grader))
