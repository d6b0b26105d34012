"""The batch's worker process: the offline second opinion on a batch's LLM grades, and its
answers' code runs, done in a process of its own.

`grading.second_opinion` (the offline grader beside the LLM: 1-2 ms of CPU per answer once the
rubric is compiled, ~40 ms more for a question's first answer) depends on the rubric, the answer and
the code results, not on the model's reply. So the batch starts it with the answer, and it is ready
by the time the reply is in. In a worker thread it would hold the GIL, and each socket call of the
event loop (every one releases the GIL) would then wait up to a switch interval to get it back: the
main reason a batch lost against a hand-written loop (issue 22). A separate process shares no GIL.
The same goes for driving a coding answer's sandbox run (codegrade.run_rubric_tests: checking the
runtime's files, forking hosts, reading their output, comparing the results): about 0.3 s of CPU
for a process's first run and 10-15 ms for each later one, all of it on threads that took the GIL
from the event loop. The worker runs the same function, in hosts forked from its own zygote.

The worker is one child process (`python -c …serve()`, the same mlgrade on its path; its side is
batch.opinion_worker) fed over its stdin: each question's rubric (pickled, before its first answer
of a batch), then one frame per answer (rubric id, answer, code results) or code run; it writes back
one JSON line per frame. The batch's event loop reads and writes the pipes itself (no thread in the
batch's process). It is started while the batch is planned, as soon as the batch is big enough, so
its imports are done by the time the first answers go out. The worker outlives a batch, so the next
batch of the same process finds its rubrics compiled and its imports done; it ends after IDLE_S
without work, at the end of its input, or when a batch stops with answers still waiting (it is
killed then). ProcessPoolExecutor was measured and dropped: its spawn blocked the loop for the
child's start-up (~0.8 s), it imports the main script again, and its feeder and manager threads
take the GIL.

The worker runs the same functions on the same objects, so the second opinion is the one finalize
would have computed and the code's results are those the batch's own threads would have got.
Anything wrong with the worker (it cannot start, it dies, it replies with nonsense) only sends the
work back to the batch's own process (UNSET): a second opinion never fails a grade.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from .opinion_worker import IDLE_S, frame
from ..grading import UNSET
from ..models import CodeTestResult, Rubric

__all__ = ["IDLE_S", "MIN_ANSWERS", "SecondOpinions", "prestart", "stop_worker"]

# Below this many LLM-graded answers a worker process (about 0.5 s of CPU to start, on another
# core) is not worth it: finalize computes the second opinion as before.
MIN_ANSWERS = 48
CLOSE_TIMEOUT_S = 15.0  # for the worker to close a batch's sandbox hosts (a zygote that will not end is killed in 5 s)
WORKER_CODE = "from mlgrade.batch.opinion_worker import serve; serve()"
_numbers = itertools.count()  # across batches: a reply can never be taken for another batch's


class _Worker:
    """The child process and its pipes (non-blocking on our side)."""

    def __init__(self) -> None:
        import mlgrade

        env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}  # it never calls out
        root = str(Path(mlgrade.__file__).resolve().parents[1])  # this mlgrade, not another install
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.key = (sys.executable, WORKER_CODE, env["PYTHONPATH"])
        # -P: `python -c` would put the working directory first on sys.path, and a json.py or
        # pickle.py there (a folder of candidates' files) would run outside the sandbox on import
        self.proc = subprocess.Popen([sys.executable, "-P", "-c", WORKER_CODE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin, self.stdout = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(self.stdin, False)
        os.set_blocking(self.stdout, False)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)


_worker: _Worker | None = None
_in_use = threading.Lock()  # one batch at a time talks to the worker; another computes in finalize


def _current_worker() -> _Worker:
    """The process's worker: the one a previous batch left, if it is still there, else a new one."""
    global _worker
    if _worker is not None and (not _worker.alive() or _worker.key[1] != WORKER_CODE):
        _worker.stop()
        _worker = None
    if _worker is None:
        _worker = _Worker()
    return _worker


def prestart() -> None:
    """Start the worker now, if there is none, without waiting for it: a batch calls this while it
    is planned, once it is known to be big enough, so the worker's start-up (about 0.3 s of imports)
    runs beside the planning. Does nothing while another batch is using the worker, or when no
    process can be started (the batch then finds out, and computes in finalize)."""
    if sys.platform == "win32" or not _in_use.acquire(blocking=False):
        return
    try:
        _current_worker()
    except Exception:  # noqa: BLE001 - SecondOpinions tries again and falls back to finalize
        pass
    finally:
        _in_use.release()


def stop_worker() -> None:
    """End the worker (at exit; after a batch that stopped with answers waiting)."""
    global _worker
    if _worker is not None:
        _worker.stop()
        _worker = None


atexit.register(stop_worker)


class SecondOpinions:
    """One batch's use of the worker: its second opinions, computed ahead (`start` returns a handle,
    UNSET when the worker is gone; `result` awaits it: the opinion, or UNSET, "compute it in
    finalize"), and its answers' code runs (`code_facts`: the results, or UNSET, "run it here")."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._sent: set[str] = set()  # the rubric ids this batch has sent the worker
        self._pending: dict[int, asyncio.Future[Any]] = {}  # opinions, answered in the order asked
        self._runs: dict[int, asyncio.Future[Any]] = {}  # code runs, answered as each is done
        self._ran_code = False
        self._outgoing = bytearray()
        self._incoming = bytearray()
        self._failed = True
        self._worker: _Worker | None = None
        # pipes on the event loop need a POSIX loop; a batch running beside this one (another
        # thread, another task) keeps to finalize rather than share the worker's replies
        if sys.platform == "win32" or not _in_use.acquire(blocking=False):
            return
        try:
            self._worker = _current_worker()
            self._loop.add_reader(self._worker.stdout, self._on_readable)
        except Exception:  # no subprocess here (a sandboxed interpreter, no fds left)
            self._worker = None
            _in_use.release()
            return
        self._failed = False

    def start(self, rubric: Rubric, answer: str, code_tests: list[CodeTestResult] | None) -> Any:
        if self._failed:
            return UNSET
        number = next(_numbers)
        future: asyncio.Future[Any] = self._loop.create_future()
        self._pending[number] = future
        self._send_rubric(rubric)
        self._send(frame(("opinion", number, rubric.id, answer, code_tests or None)))
        return future

    async def result(self, handle: Any) -> Any:
        if not isinstance(handle, asyncio.Future):
            return UNSET
        return await asyncio.shield(handle)  # a cancelled answer leaves the handle to the reader

    async def code_facts(self, rubric: Rubric, answer: str, sandbox: str | None) -> Any:
        """The results of running the answer's code against the rubric's tests, run by the worker
        (codegrade.run_rubric_tests in hosts it forks warm: the same run, driven by threads of the
        worker instead of this process's, whose GIL the event loop needs); UNSET when the worker
        could not run it (then the batch runs it itself)."""
        if self._failed:
            return UNSET
        number = next(_numbers)
        future: asyncio.Future[Any] = self._loop.create_future()
        self._runs[number] = future
        self._ran_code = True
        self._send_rubric(rubric)
        self._send(frame(("code", number, rubric.id, answer, sandbox)))
        return await asyncio.shield(future)

    def _send_rubric(self, rubric: Rubric) -> None:
        if rubric.id not in self._sent:  # this batch's version of it (another batch's may differ)
            self._sent.add(rubric.id)
            self._send(frame(("rubric", rubric)))

    def _send(self, data: bytes) -> None:
        if self._failed or self._worker is None:
            return
        self._outgoing += data
        self._on_writable()

    def _on_writable(self) -> None:
        assert self._worker is not None
        try:
            while self._outgoing:
                written = os.write(self._worker.stdin, self._outgoing)
                del self._outgoing[:written]
        except BlockingIOError:  # the pipe is full: the rest goes when the worker has read some
            self._loop.add_writer(self._worker.stdin, self._on_writable)
            return
        except OSError:
            self._fail()
            return
        self._loop.remove_writer(self._worker.stdin)

    def _on_readable(self) -> None:
        assert self._worker is not None
        try:
            chunk = os.read(self._worker.stdout, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:  # the worker is gone
            self._fail()
            return
        self._incoming += chunk
        *lines, rest = self._incoming.split(b"\n")
        self._incoming = bytearray(rest)
        for line in lines:
            try:
                number, value = json.loads(line)
            except (ValueError, TypeError):
                number = value = None
            if isinstance(number, int) and number in self._runs:
                future, value = self._runs.pop(number), _code_tests(value)
            elif self._pending and number == next(iter(self._pending)):  # opinions come in order
                future = self._pending.pop(number)
                value = value if value is None or isinstance(value, dict) else UNSET
            else:  # not a reply to anything asked: the worker is broken
                self._fail()
                return
            if not future.done():
                future.set_result(value)

    def _detach(self) -> None:
        if self._worker is not None:
            self._loop.remove_reader(self._worker.stdout)
            self._loop.remove_writer(self._worker.stdin)
            _in_use.release()

    def _fail(self) -> None:
        """The worker is gone or unusable: every answer still waiting computes its second opinion
        in finalize, and so does every later one."""
        if self._failed:
            return
        self._failed = True
        self._detach()
        pending = [*self._pending.values(), *self._runs.values()]
        self._pending, self._runs = {}, {}
        for future in pending:
            if not future.done():
                future.set_result(UNSET)
        if self._worker is not None and self._worker is _worker:
            stop_worker()

    async def aclose(self) -> None:
        """Let go of the worker: kept for the next batch when every answer was served (once it has
        closed the batch's sandbox hosts, if it ran code); ended at once when the batch stops with
        answers still waiting (Ctrl-C, a fatal grader error)."""
        if self._failed:
            return
        if self._pending or self._runs or self._outgoing:
            self._fail()
            return
        if self._ran_code:
            number = next(_numbers)
            closed: asyncio.Future[Any] = self._loop.create_future()
            self._pending[number] = closed
            self._send(frame(("end", number)))
            try:
                await asyncio.wait_for(asyncio.shield(closed), CLOSE_TIMEOUT_S)
            except TimeoutError:
                self._fail()
                return
            except asyncio.CancelledError:
                self._fail()
                raise
            if self._failed:  # it went away meanwhile
                return
        self._failed = True
        self._detach()


def _code_tests(value: Any) -> Any:
    """A code run's reply as the list of CodeTestResult it stands for, or UNSET (run it here)."""
    if not isinstance(value, dict) or not isinstance(value.get("code_tests"), list):
        return UNSET
    try:
        return [CodeTestResult.model_validate(t) for t in value["code_tests"]]
    except ValueError:
        return UNSET
