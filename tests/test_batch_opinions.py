"""The offline second opinion of a batch's LLM grades, computed in a worker process while the answer's
request is in flight (batch.opinions, issue 22 item 3): the same opinions, flags and scores as when
finalize computes them in the batch's own process; a worker that fails or dies only sends the work
back to finalize; a stopped batch leaves no worker behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from batch_helpers import read_out, write_jsonl
from fake_openai_server import FakeOpenAIServer
from mlgrade.batch import opinions
from mlgrade.batch.engine import grade_many
from mlgrade.config import load_settings

N = opinions.MIN_ANSWERS + 6


def llm_settings(srv):
    return load_settings(base_url=srv.base_url, grader="llm", model="gpt-4.1-mini")


def varied_answers(bank, n: int) -> list[dict]:
    """Answers the offline grader scores differently: parts of each rubric's model answer, so
    some second opinions agree with the fake model and some do not."""
    rubrics = [bank.get(q) for q in ("q01", "q05", "q07", "q17", "q25")]
    rows = []
    for i in range(n):
        rubric = rubrics[i % len(rubrics)]
        words = rubric.model_answer.split()
        cut = max(3, len(words) * (1 + i % 4) // 4)
        rows.append({"id": f"a{i:04d}", "question_id": rubric.id, "answer": " ".join(words[:cut]) + f" ({i})"})
    return rows


def graded_lines(path) -> dict[str, dict]:
    """The result lines by id, without what differs from run to run: the latency, and the tokens
    and cost (the fake server counts a question's prompt as cached from its second request on,
    and which request is first varies with concurrency)."""
    out = {}
    for row in read_out(path):
        for varies in ("latency_ms", "usage", "cost_usd"):
            row.pop(varies, None)
        out[row["id"]] = row
    return out


@pytest.fixture
def parent_opinions(monkeypatch):
    """Counts the second opinions computed in the test's own process."""
    import mlgrade.grading as grading

    calls: list[str] = []
    real = grading.second_opinion

    def counted(rubric, answer, code_tests=None):
        calls.append(rubric.id)
        return real(rubric, answer, code_tests)

    monkeypatch.setattr(grading, "second_opinion", counted)
    return calls


def test_worker_gives_the_same_results_as_finalize(tmp_path, bank, monkeypatch, parent_opinions):
    inp = write_jsonl(tmp_path / "in.jsonl", varied_answers(bank, N))
    # a server each: the fake imitates prompt caching, and the second run would get cached tokens
    with FakeOpenAIServer() as srv:
        monkeypatch.setattr(opinions, "MIN_ANSWERS", 10**9)  # no worker: finalize computes them
        grade_many([inp], tmp_path / "here.jsonl", settings=llm_settings(srv), bank=bank, use_cache=False,
                   concurrency=8)
    assert len(parent_opinions) == N
    parent_opinions.clear()
    with FakeOpenAIServer() as srv:
        monkeypatch.setattr(opinions, "MIN_ANSWERS", N)
        s = grade_many([inp], tmp_path / "worker.jsonl", settings=llm_settings(srv), bank=bank, use_cache=False,
                       concurrency=8)
    assert s.run.graded == N
    assert parent_opinions == []  # every one came from the worker
    here, worker = graded_lines(tmp_path / "here.jsonl"), graded_lines(tmp_path / "worker.jsonl")
    assert worker == here
    seconds = [r["review"]["second_opinion"] for r in worker.values()]
    assert all(s and s["grader"] == "offline" for s in seconds)
    assert len({s["band"] for s in seconds}) > 1  # the answers were graded, not all alike


def test_a_worker_that_cannot_run_leaves_the_work_to_finalize(tmp_path, bank, monkeypatch, parent_opinions):
    inp = write_jsonl(tmp_path / "in.jsonl", varied_answers(bank, N))
    monkeypatch.setattr(opinions, "MIN_ANSWERS", N)
    monkeypatch.setattr(opinions, "WORKER_CODE", "import sys; sys.exit(3)")
    with FakeOpenAIServer() as srv:
        s = grade_many([inp], tmp_path / "out.jsonl", settings=llm_settings(srv), bank=bank, use_cache=False)
    rows = read_out(tmp_path / "out.jsonl")
    assert s.run.graded == N and len(parent_opinions) == N
    assert all(r["review"]["second_opinion"]["grader"] == "offline" for r in rows)


@pytest.fixture(autouse=True)
def fresh_worker():
    """Each test starts without the worker an earlier batch of this process left running."""
    opinions.stop_worker()
    yield
    opinions.stop_worker()


ECHO = ("import os, pickle, struct, sys\n"
        "src = sys.stdin.buffer\n"
        "while True:\n"
        "    h = src.read(4)\n"
        "    if len(h) < 4: break\n"
        "    body = src.read(struct.unpack('>I', h)[0])\n"
        "    if body[:40].find(b'opinion') < 0: continue\n"
        "    number = pickle.loads(body)[1]\n"
        "    sys.stdout.write(REPLY % number); sys.stdout.flush()\n")


@pytest.mark.parametrize("reply", ['[%d, "high"]\\n', '[%d, 97]\\n', '[%d]\\n', 'not json %d\\n', '[-1, {}]\\n%d'])
def test_a_worker_reply_that_is_not_an_opinion_is_not_used(tmp_path, bank, monkeypatch, parent_opinions, reply):
    """Whatever the worker writes, only a dict (or None) for the answer next in line is taken as its
    second opinion; anything else sends the answer (and every later one) back to finalize."""
    inp = write_jsonl(tmp_path / "in.jsonl", varied_answers(bank, N))
    monkeypatch.setattr(opinions, "MIN_ANSWERS", N)
    monkeypatch.setattr(opinions, "WORKER_CODE", f"REPLY = '{reply}'\n" + ECHO)
    with FakeOpenAIServer() as srv:
        s = grade_many([inp], tmp_path / "out.jsonl", settings=llm_settings(srv), bank=bank, use_cache=False)
    assert s.run.graded == N and len(parent_opinions) == N
    assert all(r["review"]["second_opinion"]["grader"] == "offline" for r in read_out(tmp_path / "out.jsonl"))


def test_closing_with_answers_waiting_stops_the_worker_at_once(bank):
    async def go():
        worker = opinions.SecondOpinions()
        handle = worker.start(bank.get("q01"), "Labelled and unlabelled data together. " * 2000, None)
        proc = opinions._worker.proc
        await worker.aclose()
        return await worker.result(handle), proc

    second, proc = asyncio.run(asyncio.wait_for(go(), 30))
    assert proc.poll() is not None and opinions._worker is None  # the process is gone, not left running
    assert second is opinions.UNSET  # the waiting answer computes its own


def test_the_next_batch_finds_the_worker_warm_and_a_parallel_one_does_without(bank):
    rubric = bank.get("q07")

    async def one_batch():
        worker = opinions.SecondOpinions()
        try:
            return await worker.result(worker.start(rubric, rubric.model_answer, None)), opinions._worker
        finally:
            await worker.aclose()

    first, process = asyncio.run(asyncio.wait_for(one_batch(), 60))
    second, again = asyncio.run(asyncio.wait_for(one_batch(), 60))
    from mlgrade.grading import second_opinion

    assert first == second == second_opinion(rubric, rubric.model_answer) and first["grader"] == "offline"
    assert again is process and process.alive()  # kept between batches, in another event loop

    async def two_at_once():
        a, b = opinions.SecondOpinions(), opinions.SecondOpinions()
        handles = a.start(rubric, rubric.model_answer, None), b.start(rubric, rubric.model_answer, None)
        results = [await a.result(handles[0]), await b.result(handles[1])]
        await a.aclose()
        await b.aclose()
        return results

    assert asyncio.run(asyncio.wait_for(two_at_once(), 60)) == [first, opinions.UNSET]


def _workers_of(pid: int) -> list[int]:
    """The second-opinion workers among the descendants of `pid` (Linux /proc), or [] elsewhere."""
    from pathlib import Path

    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes()
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid and opinions.WORKER_CODE.encode() in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self"), reason="needs /proc")
def test_ctrl_c_stops_the_batch_and_its_worker_without_a_traceback(tmp_path, bank):
    """Ctrl-C in a terminal reaches the whole process group, the worker included: the batch keeps
    what it wrote and names the resume command, the worker prints nothing and is gone."""
    import os
    import signal
    import subprocess
    import sys
    import time

    src = write_jsonl(tmp_path / "answers.jsonl", varied_answers(bank, 200))
    out = tmp_path / "results.jsonl"
    with FakeOpenAIServer(latency=0.5) as srv:
        env = {**os.environ, "OPENAI_BASE_URL": srv.base_url, "MLGRADE_GRADER": "llm"}
        proc = subprocess.Popen([sys.executable, "-m", "mlgrade", "batch", str(src), "--out", str(out), "-c", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
                                start_new_session=True)
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 3 or not workers):
            workers = workers or _workers_of(proc.pid)
            time.sleep(0.05)
        assert workers, "the batch started no second-opinion worker"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert f"resume with: mlgrade batch {src} --out {out}" in err
    time.sleep(0.2)
    assert not any(Path(f"/proc/{w}").exists() and "Z" not in Path(f"/proc/{w}/stat").read_text().split()[2]
                   for w in workers)


def test_the_worker_imports_nothing_from_the_working_directory(tmp_path, bank, monkeypatch):
    """`python -c` puts the working directory first on sys.path: a json.py among the files of the
    folder a batch is run from (candidates' submissions) must not run in the worker."""
    marker = tmp_path / "ran"
    for name in ("json", "pickle", "select"):
        (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'a').write({name!r})\n")
    monkeypatch.chdir(tmp_path)
    rubric = bank.get("q07")

    async def one_batch():
        worker = opinions.SecondOpinions()
        try:
            return await worker.result(worker.start(rubric, rubric.model_answer, None))
        finally:
            await worker.aclose()

    second = asyncio.run(asyncio.wait_for(one_batch(), 60))
    assert not marker.exists(), marker.read_text()
    assert second is not opinions.UNSET and second["grader"] == "offline"  # the worker served it


READER = '''
import os, pickle, select, struct, sys
buf = b""

def frame():
    global buf
    while True:
        if len(buf) >= 4:
            size = struct.unpack(">I", buf[:4])[0]
            if len(buf) >= 4 + size:
                body, buf = buf[4:4 + size], buf[4 + size:]
                return pickle.loads(body)
        if not select.select([0], [], [], GUARD)[0]:
            return None
        chunk = os.read(0, 65536)
        if not chunk:
            return None
        buf += chunk
'''
HOLD = READER + '''
held = []
while len(held) < WANT and (message := frame()) is not None:
    if message[0] == "opinion":
        held.append(message[1])
open(REPORT, "w").write(str(len(held)))
for number in held:
    sys.stdout.write("[%d, null]\\n" % number)
sys.stdout.flush()
while (message := frame()) is not None:
    if message[0] == "opinion":
        sys.stdout.write("[%d, null]\\n" % message[1])
        sys.stdout.flush()
'''


def test_answers_waiting_for_their_second_opinion_do_not_hold_up_requests(tmp_path, bank, monkeypatch):
    """A worker that starts cold (imports, compiling the rubrics), or that the sandbox's hosts keep
    off the CPU, answers its first opinions seconds after the first replies are in. Answers waiting
    for theirs must not stop new requests: here the worker answers nothing until it has been sent
    every answer of the batch, which a batch that stalls on waiting answers never does (the worker
    then gives up waiting after GUARD_S and reports how many it had)."""
    from batch_helpers import SlowGrader

    report = tmp_path / "held"
    monkeypatch.setattr(opinions, "MIN_ANSWERS", N)
    monkeypatch.setattr(opinions, "WORKER_CODE", f"GUARD, WANT, REPORT = 5, {N}, {str(report)!r}\n" + HOLD)
    inp = write_jsonl(tmp_path / "in.jsonl", varied_answers(bank, N))
    grader = SlowGrader(latency=0.001, default_status="covered", name="llm")  # an LLM grader to the batch
    s = grade_many([inp], tmp_path / "out.jsonl", grader=grader, bank=bank, concurrency=2)
    assert s.run.graded == N and len(grader.calls) == N
    assert report.read_text() == str(N)  # every answer was asked before any second opinion came back
    assert grader.peak <= 2


def test_the_worker_is_started_while_the_batch_is_planned(tmp_path, bank, monkeypatch):
    """Its start-up (imports) runs beside the planning of the rest of the inputs: it is started as
    the MIN_ANSWERS-th answer is spooled, not once every answer has been read."""
    from batch_helpers import SlowGrader
    from mlgrade.batch import planning

    spooled: list[int] = []
    started_at: list[int] = []
    real_add = planning.Spool.add

    def add(self, item):
        spooled.append(1)
        real_add(self, item)

    monkeypatch.setattr(planning.Spool, "add", add)
    monkeypatch.setattr(opinions, "prestart", lambda: started_at.append(len(spooled)))
    inp = write_jsonl(tmp_path / "in.jsonl", varied_answers(bank, N + 20))
    grade_many([inp], tmp_path / "dry.jsonl", grader=SlowGrader(name="llm"), bank=bank, dry_run=True)
    grade_many([inp], tmp_path / "offline.jsonl", grader=SlowGrader(latency=0.0), bank=bank)
    assert started_at == []  # neither a dry run nor another grader has any use for it
    spooled.clear()
    s = grade_many([inp], tmp_path / "out.jsonl", grader=SlowGrader(latency=0.0, name="llm"), bank=bank)
    assert s.run.graded == N + 20
    assert started_at == [opinions.MIN_ANSWERS]


def test_each_batch_sends_the_worker_its_own_version_of_a_rubric(bank):
    """The worker keeps the rubrics it was sent between batches; a later batch of the same process
    may grade against an edited rubric of the same id, and gets its opinions from that one."""
    from mlgrade.grading import second_opinion

    rubric = bank.get("q07")
    edited = rubric.model_copy(update={"key_points": rubric.key_points[:1]})  # what the answer covers
    words = rubric.model_answer.split()
    answer = " ".join(words[: len(words) // 4])

    async def one_batch(version):
        worker = opinions.SecondOpinions()
        try:
            return await worker.result(worker.start(version, answer, None))
        finally:
            await worker.aclose()

    first = asyncio.run(asyncio.wait_for(one_batch(rubric), 60))
    second = asyncio.run(asyncio.wait_for(one_batch(edited), 60))
    assert first == second_opinion(rubric, answer)
    assert second == second_opinion(edited, answer) != first


CODE_ANSWERS = [  # verdicts that do not depend on the run's random hidden cases: all pass, or none does
    ("q24", "def can_shift(a, b):\n    return len(a) == len(b) and b in a + a\n"),
    ("q24", "Compare them:\n\n```python\ndef can_shift(a, b):\n    return None\n```\n"),
    ("q21", "def find_bigrams(text):\n    words = text.split()\n"
            "    return [(words[i], words[i + 1]) for i in range(len(words) - 1)]\n"),
    ("q21", "def find_bigrams(text):\n    return None\n"),
    ("q21", "def find_bigrams(text) return text"),  # a syntax error: nothing is run
]


def coding_batch(bank, n_text: int) -> list[dict]:
    rows = varied_answers(bank, n_text)
    rows += [{"id": f"code{i}", "question_id": qid, "answer": answer} for i, (qid, answer) in enumerate(CODE_ANSWERS)]
    return rows


def verdicts(lines: dict[str, dict]) -> dict[str, dict]:
    """The result lines with each hidden case reduced to its verdict: its arguments (and so its
    expected value and what the code returned) are drawn afresh for every run."""
    out = {}
    for key, row in lines.items():
        row = dict(row)
        row["code_tests"] = [t if not t["hidden"] else {"hidden": True, "edge": t["edge"], "status": t["status"]}
                             for t in row.get("code_tests", [])]
        out[key] = row
    return out


@pytest.fixture
def parent_code_runs(monkeypatch):
    """Counts the code runs driven from the test's own process (grading.code_facts)."""
    import mlgrade.batch.runner as runner

    calls: list[str] = []
    real = runner.code_facts

    async def counted(rubric, answer, settings, *, background=False):
        calls.append(rubric.id)
        return await real(rubric, answer, settings, background=background)

    monkeypatch.setattr(runner, "code_facts", counted)
    return calls


def test_the_worker_runs_the_answers_code_with_the_same_results(tmp_path, bank, monkeypatch, parent_code_runs):
    """An LLM batch's coding answers are run by the worker (the batch's own threads would hold the
    GIL its event loop needs), with the results, grades and flags the batch would have got itself."""
    import dataclasses

    rows = coding_batch(bank, 8)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)

    def run(out, min_answers):
        monkeypatch.setattr(opinions, "MIN_ANSWERS", min_answers)
        with FakeOpenAIServer() as srv:
            settings = dataclasses.replace(llm_settings(srv), exec_code=True)
            return grade_many([inp], tmp_path / out, settings=settings, bank=bank, use_cache=False, concurrency=4)

    here = run("here.jsonl", 10**9)
    assert sorted(parent_code_runs) == sorted(q for q, _ in CODE_ANSWERS)
    parent_code_runs.clear()
    worker = run("worker.jsonl", len(rows))
    assert parent_code_runs == []  # every run came from the worker
    assert here.run.graded == worker.run.graded == len(rows)
    mine, theirs = verdicts(graded_lines(tmp_path / "here.jsonl")), verdicts(graded_lines(tmp_path / "worker.jsonl"))
    assert theirs == mine
    statuses = {r["id"]: {t["status"] for t in r["code_tests"]} for r in theirs.values() if r["id"].startswith("code")}
    assert statuses == {"code0": {"passed"}, "code1": {"failed"}, "code2": {"passed"}, "code3": {"failed"},
                        "code4": {"error"}}


# answers nothing, and ends as it is asked to run code (or, as a guard, after GUARD s without a frame)
DIES_ON_CODE = READER + """
while (message := frame()) is not None and message[0] != "code":
    pass
"""


def test_code_the_worker_could_not_run_is_run_by_the_batch(tmp_path, bank, monkeypatch, parent_code_runs,
                                                           parent_opinions):
    import dataclasses

    rows = coding_batch(bank, 8)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    monkeypatch.setattr(opinions, "MIN_ANSWERS", len(rows))
    monkeypatch.setattr(opinions, "WORKER_CODE", "GUARD = 5\n" + DIES_ON_CODE)
    with FakeOpenAIServer() as srv:
        settings = dataclasses.replace(llm_settings(srv), exec_code=True)
        s = grade_many([inp], tmp_path / "out.jsonl", settings=settings, bank=bank, use_cache=False, concurrency=4)
    assert s.run.graded == len(rows)
    assert sorted(parent_code_runs) == sorted(q for q, _ in CODE_ANSWERS)
    assert len(parent_opinions) == len(rows)  # and the second opinions it never gave
    lines = verdicts(graded_lines(tmp_path / "out.jsonl"))
    assert {t["status"] for t in lines["code0"]["code_tests"]} == {"passed"}


@pytest.mark.skipif(not hasattr(__import__("os"), "SCHED_BATCH"), reason="Linux scheduling policies")
def test_the_worker_runs_as_batch_work(bank):
    """The worker (and the sandbox hosts it starts, which inherit it) runs under SCHED_BATCH: the
    same CPU share, but waking it does not preempt the batch's event loop."""
    import os

    rubric = bank.get("q07")

    async def one_batch():
        worker = opinions.SecondOpinions()
        try:
            await worker.result(worker.start(rubric, rubric.model_answer, None))
            return os.sched_getscheduler(opinions._worker.proc.pid)
        finally:
            await worker.aclose()

    assert asyncio.run(asyncio.wait_for(one_batch(), 60)) == os.SCHED_BATCH
