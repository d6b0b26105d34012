"""Issue 26: following the feedback raises the score, or the feedback says which rule holds it.

On every rubric of the bank, an answer starts as the central idea and then, step by step, adds the
text of the key point the offline grader's feedback asks for first (as an answer sentence). Each
step must raise the score, unless a rule held it (the essential-point cap, the central-claim cap or
the working-code floor), and then the feedback the user followed named that rule."""

from __future__ import annotations

import pytest

from mlgrade.scoring import HELD

NOTE_STARTS = tuple(text.split("{")[0] for text in HELD.values())
ASKS = ("Add (essential): ", "Add: ", "Develop: ")


def _bank():
    from mlgrade.rubrics import load_rubrics

    return load_rubrics()


def _asked(grade) -> str | None:
    """The key point text the feedback asks for first (what a user would do next)."""
    for line in grade.improvements:
        for prefix in ASKS:
            if line.startswith(prefix):
                return line[len(prefix):]
    return None


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


@pytest.mark.parametrize("qid", [r.id for r in _bank()])
def test_following_the_feedback_moves_the_score_or_names_the_rule(qid, bank):
    from mlgrade.config import load_settings
    from mlgrade.grading import grade

    settings = load_settings(grader="offline", exec_code=False)
    rubric = bank.get(qid)
    core = max((kp for kp in rubric.key_points if kp.essential), key=lambda kp: kp.weight)
    answer = _sentence(core.point)
    before = grade(qid, answer, settings=settings, bank=bank)
    steps = 0
    while (asked := _asked(before)) is not None and steps < len(rubric.key_points) + 2:
        answer = f"{answer} {_sentence(asked)}"
        after = grade(qid, answer, settings=settings, bank=bank)
        if after.score <= before.score:
            notes = [line for line in before.improvements if line.startswith(NOTE_STARTS)]
            assert notes, (f"{qid}: added {asked!r} as asked; the score stayed at {before.score:g} "
                           f"and the feedback named no rule: {before.improvements}")
        before, steps = after, steps + 1
    assert steps, f"{qid}: the feedback asked for nothing to add ({before.improvements})"


def test_the_second_essential_point_of_the_report_raises_the_score(bank):
    # the newcomer's q17: both essential points stated scored 30, like the first alone
    from mlgrade.config import load_settings
    from mlgrade.grading import grade

    settings = load_settings(grader="offline", exec_code=False)
    first = "ROC AUC is the probability that a randomly chosen positive is ranked above a randomly chosen negative."
    one = grade("q17", first, settings=settings, bank=bank)
    both = grade("q17", f"{first} 0.5 is random and 1 is perfect.", settings=settings, bank=bank)
    assert one.improvements[0].startswith("Add (essential): Random or constant scores give 0.5")
    assert (one.score, both.score) == (30.0, 35.0)


def test_a_held_score_names_its_rule(bank):
    from mlgrade.models import Judgment, MisconceptionFound
    from mlgrade.scoring import ESSENTIAL_CAP, compute_score, held_note

    q17 = bank.get("q17")
    essential = {kp.id for kp in q17.key_points if kp.essential}
    all_but_one = [Judgment(key_point=kp.id, status="missing" if kp.id == "reference-values" else "covered")
                   for kp in q17.key_points]
    assert "reference-values" in essential
    capped = compute_score(q17, all_but_one, [])
    assert (capped.score, capped.held) == (ESSENTIAL_CAP, "essential_cap")
    assert held_note(q17, all_but_one, capped).startswith("Held at 59 because an essential point is missing "
                                                          "(reference-values)")
    full = [j.model_copy(update={"status": "covered"}) for j in all_but_one]
    assert compute_score(q17, full, []).held == ""
    central = compute_score(q17, full, [MisconceptionFound(id="prompt-injection")])
    assert central.held == "central_cap" and held_note(q17, full, central).startswith("Capped at 25")


def test_the_feedback_of_a_capped_grade_says_so_first(bank):
    from mlgrade.config import load_settings
    from mlgrade.grading import grade

    q17 = bank.get("q17")
    answer = " ".join(_sentence(kp.point) for kp in q17.key_points if kp.id != "reference-values")
    g = grade("q17", answer, settings=load_settings(grader="offline", exec_code=False), bank=bank)
    assert g.score == 59.0
    assert g.improvements[0].startswith("Held at 59 because an essential point is missing (reference-values)")
    assert g.improvements[1].startswith("Add (essential): Random or constant scores")
