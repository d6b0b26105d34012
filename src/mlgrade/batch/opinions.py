"""The offline second opinion on a batch's LLM grades, computed in a process of its own.

`grading.second_opinion` (the offline grader beside the LLM: 5-25 ms of CPU per answer, about
0.1 s for a question's first answer) depends on the rubric, the answer and the code results, not
on the model's reply. So the batch starts it with the answer, and it is ready by the time the
reply is in. In a worker thread it would hold the GIL, and each socket call of the event loop
(every one releases the GIL) would then wait up to a switch interval to get it back: most of the
time a batch lost against a hand-written loop (issue 22). A separate process shares no GIL.

The worker is one child process (`python -c …serve()`, the same mlgrade on its path), fed over
its stdin: first the batch's rubrics (pickled once), then one frame per answer (rubric id,
answer, code results); it writes back one JSON line per answer. No thread in the batch's process:
the event loop writes and reads the pipes. ProcessPoolExecutor was measured and dropped: its
spawn blocks the loop for the child's start-up (~0.8 s), it imports the main script again, and
its feeder and manager threads take the GIL on every task (benchmarks/batch_throughput.py).

The child runs the same function on the same objects, so the second opinion is the one finalize
would have computed. Anything wrong with the worker (it cannot start, it dies, it replies with
nonsense) only sends the work back to finalize (UNSET): a second opinion never fails a grade.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import pickle
import struct
import sys
from pathlib import Path
from typing import Any

from ..grading import UNSET
from ..models import CodeTestResult, Rubric

# Below this many LLM-graded answers a worker process (about 0.5 s of CPU to start, on another
# core) is not worth it: finalize computes the second opinion as before.
MIN_ANSWERS = 48
WORKER_CODE = "from mlgrade.batch.opinions import serve; serve()"
_HEADER = struct.Struct(">I")
_CLOSE_WAIT_S = 5.0


class SecondOpinions:
    """Second opinions computed ahead by a worker process. `start` returns a handle (UNSET when the
    worker is gone); `result` awaits it: the opinion, or UNSET for "compute it in finalize"."""

    def __init__(self, rubrics: list[Rubric]):
        self._init = _frame(pickle.dumps(list(rubrics), protocol=pickle.HIGHEST_PROTOCOL))
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._numbers = itertools.count()
        self._backlog: list[bytes] = []  # frames written once the worker has started
        self._proc: asyncio.subprocess.Process | None = None
        self._failed = False
        self._reader: asyncio.Task[None] | None = None
        # started now, on the loop, without waiting: its start-up overlaps the first requests
        self._launch = asyncio.get_running_loop().create_task(self._start_worker())

    async def _start_worker(self) -> None:
        import mlgrade

        env = dict(os.environ)
        root = str(Path(mlgrade.__file__).resolve().parents[1])  # this mlgrade, not another install
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", WORKER_CODE, env=env,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
                limit=1 << 20)
        except Exception:  # no subprocess here (a sandboxed interpreter, no fds left)
            self._fail()
            return
        assert self._proc.stdin is not None
        self._proc.stdin.write(self._init + b"".join(self._backlog))
        self._backlog.clear()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    def start(self, rubric: Rubric, answer: str, code_tests: list[CodeTestResult] | None) -> Any:
        if self._failed:
            return UNSET
        number = next(self._numbers)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[number] = future
        frame = _frame(pickle.dumps((number, rubric.id, answer, code_tests or None), protocol=pickle.HIGHEST_PROTOCOL))
        stdin = self._proc.stdin if self._proc is not None else None
        if stdin is None:
            self._backlog.append(frame)
        else:
            try:
                stdin.write(frame)
            except Exception:
                self._fail()
        return future

    async def result(self, handle: Any) -> Any:
        if not isinstance(handle, asyncio.Future):
            return UNSET
        return await asyncio.shield(handle)  # a cancelled answer leaves the handle to the reader

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            while True:
                line = await self._proc.stdout.readline()
                if not line:
                    break
                number, opinion = json.loads(line)
                future = self._pending.pop(number, None)
                if future is not None and not future.done():
                    future.set_result(opinion if opinion is None or isinstance(opinion, dict) else UNSET)
        except (ValueError, TypeError, OSError):
            pass
        self._fail()

    def _fail(self) -> None:
        """The worker is gone: every answer still waiting computes its second opinion in finalize."""
        self._failed = True
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_result(UNSET)

    async def aclose(self) -> None:
        """Stop the worker: at the end of its input when every answer was served; at once when the
        batch stops with answers still waiting (Ctrl-C, a fatal grader error)."""
        abandoned = bool(self._pending)
        self._failed = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._launch
        proc = self._proc
        try:
            if proc is not None:
                if proc.stdin is not None:
                    proc.stdin.close()
                if abandoned:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                try:
                    await asyncio.wait_for(proc.wait(), _CLOSE_WAIT_S)
                except asyncio.TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
        finally:
            if self._reader is not None:
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._reader
            self._fail()


def _frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload)) + payload


def serve() -> None:
    """The worker: rubrics first, then (number, rubric id, answer, code results) frames, each
    answered with one JSON line [number, opinion]. Ends at the end of its input."""
    import signal

    # Ctrl-C reaches the whole process group: the batch handles it and closes the worker's input;
    # the worker must not print a KeyboardInterrupt traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print in the grading code must not corrupt the replies
    source = sys.stdin.buffer

    def frames() -> Any:
        while True:
            header = source.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            (size,) = _HEADER.unpack(header)
            payload = source.read(size)
            if len(payload) < size:
                return
            yield pickle.loads(payload)  # noqa: S301  (our own parent's frames, over a private pipe)

    from ..grading import second_opinion

    stream = frames()
    rubrics = {r.id: r for r in next(stream, [])}
    for number, rubric_id, answer, code_tests in stream:
        rubric = rubrics.get(rubric_id)
        opinion = second_opinion(rubric, answer, code_tests) if rubric is not None else "unknown rubric"
        out.write(json.dumps([number, opinion]).encode() + b"\n")
        out.flush()
    # nothing to clean up: skip the interpreter's teardown (about 0.4 s with the grader's modules
    # loaded, which the batch would wait for before it returns)
    os._exit(0)
