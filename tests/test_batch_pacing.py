"""Batch pacing (issue 22 item 3): a request slot is held only while the grader is asked. The grade
is finalized (evidence, score, the offline second opinion) after the slot is given back, and an
answer's code runs in the sandbox before it takes one, so neither keeps other requests waiting."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

from batch_helpers import SlowGrader, answers, read_out, write_jsonl
from mlgrade.batch.engine import grade_many

GUARD_S = 5  # only a guard against a hang: the old code waits it out and the test fails


def test_next_request_goes_out_while_the_previous_grade_is_finalized(tmp_path, bank, monkeypatch):
    import mlgrade.grading as grading

    second_asked = threading.Event()
    waited: list[bool] = []

    class Recording(SlowGrader):
        async def assess(self, rubric, answer, *, facts=None):
            if self.calls:
                second_asked.set()
            return await super().assess(rubric, answer, facts=facts)

    real = grading.finalize

    def finalize(rubric, answer, assessment, **kwargs):
        if not waited:  # the first grade: finished only once the next answer has been sent
            waited.append(second_asked.wait(GUARD_S))
        return real(rubric, answer, assessment, **kwargs)

    monkeypatch.setattr(grading, "finalize", finalize)
    inp = write_jsonl(tmp_path / "in.jsonl", answers(3, qids=("q01",)))
    grader = Recording(default_status="covered")
    summary = grade_many([inp], tmp_path / "out.jsonl", grader=grader, bank=bank, concurrency=1)
    assert waited == [True]  # one slot, yet the second answer was asked while the first was finalized
    assert grader.peak == 1 and summary.run.graded == 3
    assert [r["score"] for r in read_out(tmp_path / "out.jsonl")] == [100.0] * 3


def test_answer_code_runs_without_holding_a_request_slot(tmp_path, bank, monkeypatch, settings):
    """q21 (coding) comes before q22 in the bank. With one slot, q22's answer is asked while q21's
    answer's code is still running: the code run holds no slot, so it does not delay the others."""
    import mlgrade.batch.runner as runner
    import mlgrade.grading as grading

    other_asked = asyncio.Event()
    code_ran: list[tuple[str, bool]] = []

    class Recording(SlowGrader):
        async def assess(self, rubric, answer, *, facts=None):
            if rubric.id == "q22":
                other_asked.set()
            return await super().assess(rubric, answer, facts=facts)

    async def code_facts(rubric, answer, settings, *, background=False):
        if rubric.id != "q21":
            return []
        assert background  # a batch runs code in hosts forked warm (code.hosts)
        try:
            await asyncio.wait_for(other_asked.wait(), GUARD_S)
            code_ran.append((rubric.id, True))
        except TimeoutError:
            code_ran.append((rubric.id, False))
        return []

    monkeypatch.setattr(grading, "code_facts", code_facts)
    monkeypatch.setattr(runner, "code_facts", code_facts, raising=False)
    rows = [{"id": "code", "question_id": "q21", "answer": "def find_bigrams(text):\n    return []"},
            {"id": "words", "question_id": "q22", "answer": "Activations add non-linearity."}]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    grader = Recording()
    summary = grade_many([inp], tmp_path / "out.jsonl", grader=grader, bank=bank, concurrency=1,
                         settings=dataclasses.replace(settings, exec_code=True))
    assert code_ran == [("q21", True)]
    assert grader.peak == 1 and summary.run.graded == 2
    assert {r["id"] for r in read_out(tmp_path / "out.jsonl")} == {"code", "words"}


def test_answers_waiting_for_a_slot_are_not_sent_after_a_fatal_failure(tmp_path, bank):
    from mlgrade.errors import GraderFailure, MlgradeError

    class Unauthorised(SlowGrader):
        async def assess(self, rubric, answer, *, facts=None):
            self.calls.append((rubric.id, answer))
            await asyncio.sleep(0.01)
            raise GraderFailure("401 invalid API key", fatal=True)

    inp = write_jsonl(tmp_path / "in.jsonl", answers(40))
    grader = Unauthorised()
    try:
        grade_many([inp], tmp_path / "out.jsonl", grader=grader, bank=bank, concurrency=4)
    except MlgradeError as exc:
        assert "batch stopped: 401" in str(exc)
    else:
        raise AssertionError("the batch did not stop")
    assert len(grader.calls) == 4  # the first wave; nothing queued behind it went out


def test_each_questions_reply_schema_is_built_ahead_in_the_worker_thread(tmp_path, bank):
    """Building a question's reply model and schema (LLMGrader.prepare) on the event loop, at the
    question's first answer, stalled every request in flight; a batch builds each question's in its
    worker thread while the question before it is asked. Not all of them at the start: there they
    took the GIL from the first wave of requests. The first question's is wanted at once."""
    prepared: list[tuple[str, str, int]] = []
    asked: list[str] = []

    class Preparing(SlowGrader):
        def prepare(self, rubric):
            prepared.append((rubric.id, threading.current_thread().name, len(asked)))

        async def assess(self, rubric, answer, *, facts=None):
            asked.append(rubric.id)
            return await super().assess(rubric, answer, facts=facts)

    inp = write_jsonl(tmp_path / "in.jsonl", answers(12, qids=("q01", "q07", "q17")))
    summary = grade_many([inp], tmp_path / "out.jsonl", grader=Preparing(latency=0.02), bank=bank, concurrency=2)
    assert summary.run.graded == 12
    assert [(rid, thread) for rid, thread, _ in prepared] == [
        ("q01", "MainThread"), ("q07", "mlgrade-finalize_0"), ("q17", "mlgrade-finalize_0")]
    assert prepared[2][2] >= 2  # q17's once q07's answers were going out, not before the first request


def test_llm_grader_prepare_builds_the_schema_its_requests_use(bank, settings):
    import dataclasses as dc

    from mlgrade.graders.llm import LLMGrader, grading_model
    from mlgrade.graders.replies import strict_schema

    grader = LLMGrader(dc.replace(settings, base_url="http://127.0.0.1:9/v1", api_key="sk-test"))
    rubric = bank.get("q13")
    strict_schema.cache_clear()
    grader.prepare(rubric)
    before = strict_schema.cache_info()
    strict_schema(grading_model(rubric, grader.judge))  # what build_request asks for
    assert strict_schema.cache_info().hits == before.hits + 1 and before.currsize == 1
