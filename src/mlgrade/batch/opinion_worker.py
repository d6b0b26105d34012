"""The second-opinion worker's own side: the child process batch.opinions starts (`python -P -c
"…serve()"`), which computes `grading.second_opinion` for a batch's LLM grades.

Its own module so that the worker imports only what it runs: the parent's side (batch.opinions)
pulls in asyncio and subprocess, about 40 ms of a cold start that the first replies wait for.

Frames on stdin (a 4-byte length, then a pickle from the parent, over a private pipe):
("rubric", Rubric) before the first answer to each question of a batch, and ("opinion", number,
rubric id, answer, code results). Each opinion is answered with one JSON line [number, opinion] on
stdout, in the order asked. It ends at the end of its input or after IDLE_S without any.
"""

from __future__ import annotations

import json
import os
import pickle
import select
import signal
import struct

HEADER = struct.Struct(">I")
IDLE_S = 60.0  # a worker left without work for this long ends itself


def frame(message: object) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


def serve() -> None:
    # Ctrl-C reaches the whole process group: the batch handles it and ends the worker; the worker
    # must not print a KeyboardInterrupt traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print in the grading code must not corrupt the replies
    buffer = bytearray()

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
    while (header := read(HEADER.size)) is not None and (payload := read(HEADER.unpack(header)[0])) is not None:
        message = pickle.loads(payload)  # noqa: S301  (our own parent's frames, over a private pipe)
        if message[0] == "rubric":
            rubrics[message[1].id] = message[1]
            continue
        _, number, rubric_id, answer, code_tests = message
        rubric = rubrics.get(rubric_id)
        opinion = second_opinion(rubric, answer, code_tests) if rubric is not None else "unknown rubric"
        out.write(json.dumps([number, opinion]).encode() + b"\n")
        out.flush()
    # nothing to clean up: skip the interpreter's teardown (about 0.4 s with the grader's modules
    # loaded, which a batch closing the worker would wait for)
    out.flush()
    os._exit(0)
