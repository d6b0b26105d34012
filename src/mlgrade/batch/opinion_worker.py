"""The batch worker's own side: the child process batch.opinions starts (`python -P -c "…serve()"`),
which computes `grading.second_opinion` for a batch's LLM grades and runs its answers' code.

Its own module so that the worker imports only what it runs: the parent's side (batch.opinions)
pulls in asyncio and subprocess, about 40 ms of a cold start that the first replies wait for.

Frames on stdin (a 4-byte length, then a pickle from the parent, over a private pipe):
("rubric", Rubric) before the first answer to each question of a batch; ("opinion", number, rubric
id, answer, code results); ("code", number, rubric id, answer, sandbox mode); ("end", number) when
a batch is over. Each is answered with one JSON line [number, reply] on stdout: the opinion (in the
order asked); {"code_tests": [...]} or {"error": why} for a code run (whenever it is done: runs go
on in threads, at most as many at a time as the parent sends); null once the batch's sandbox hosts
are closed. It ends at the end of its input or after IDLE_S without any.
"""

from __future__ import annotations

import json
import os
import pickle
import select
import signal
import struct
import threading
from typing import Any

HEADER = struct.Struct(">I")
IDLE_S = 60.0  # a worker left without work for this long ends itself


def frame(message: object) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


def _run_code(rubric: Any, answer: str, sandbox: str | None) -> dict:
    """An answer's code run, as the batch's own process would have run it (in hosts forked warm)."""
    from ..code.codegrade import run_rubric_tests

    try:
        tests = run_rubric_tests(rubric, answer, sandbox=sandbox, background=True)
    except Exception as exc:  # noqa: BLE001 - the parent runs it again itself, and sees this for itself
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"code_tests": [t.model_dump(mode="json") for t in tests]}


def _as_batch_work() -> None:
    """Run as throughput work (Linux SCHED_BATCH, inherited by the sandbox hosts this process starts):
    the same share of the CPU, but a frame waking it no longer preempts the batch's event loop on
    the core they share. The loop's writes to the worker took 110-150 ms of a 200-answer batch
    without it (a write returned only once the woken worker had run), 60-120 ms with it."""
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or not allowed here: the default policy then
        pass


def serve() -> None:
    # Ctrl-C reaches the whole process group: the batch handles it and ends the worker; the worker
    # must not print a KeyboardInterrupt traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _as_batch_work()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print in the grading code must not corrupt the replies
    writing = threading.Lock()  # code runs reply from their threads
    buffer = bytearray()

    def reply(number: int, value: Any) -> None:
        line = json.dumps([number, value]).encode() + b"\n"
        with writing:
            out.write(line)
            out.flush()

    def read(size: int) -> bytes | None:
        while len(buffer) < size:
            if not select.select([0], [], [], IDLE_S)[0]:
                return None
            chunk = os.read(0, 1 << 16)
            if not chunk:
                return None
            buffer.extend(chunk)
        data = bytes(buffer[:size])
        del buffer[:size]
        return data

    from ..grading import second_opinion
    from ..graders import offline  # noqa: F401  (what the first opinion needs: loaded while the batch still plans)
    from ..models import Rubric

    rubrics: dict[str, Rubric] = {}
    runs: Any = None  # the code runs' threads, started with the first
    while (header := read(HEADER.size)) is not None and (payload := read(HEADER.unpack(header)[0])) is not None:
        message = pickle.loads(payload)  # noqa: S301  (our own parent's frames, over a private pipe)
        kind = message[0]
        if kind == "rubric":
            rubrics[message[1].id] = message[1]
        elif kind == "opinion":
            _, number, rubric_id, answer, code_tests = message
            rubric = rubrics.get(rubric_id)
            reply(number, second_opinion(rubric, answer, code_tests) if rubric is not None else "unknown rubric")
        elif kind == "code":
            _, number, rubric_id, answer, sandbox = message
            if runs is None:
                from concurrent.futures import ThreadPoolExecutor

                runs = ThreadPoolExecutor(max_workers=max(4, os.cpu_count() or 1), thread_name_prefix="code")
            rubric = rubrics.get(rubric_id)
            if rubric is None:
                reply(number, {"error": "unknown rubric"})
            else:
                runs.submit(lambda n, r, a, s: reply(n, _run_code(r, a, s)), number, rubric, answer, sandbox)
        elif kind == "end":
            from ..code.hosts import close_all

            close_all()  # the batch's warm sandbox hosts (code.hosts), as the batch's own process would
            reply(message[1], None)
    # nothing to clean up: skip the interpreter's teardown (about 0.4 s with the grader's modules
    # loaded, which a batch closing the worker would wait for)
    with writing:
        out.flush()
    os._exit(0)
