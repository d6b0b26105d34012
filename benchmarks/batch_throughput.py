"""Batch throughput against a loopback OpenAI-compatible server with injected latency.

Starts tests/fake_openai_server.py in its own process (so its CPU does not compete with the
client's, as a remote API would not), then grades N answers with the llm grader through
`mlgrade.grade_many` at several concurrencies, and prints wall time against the ideal
(N × latency / concurrency) and against a hand-written loop in the same run: `AsyncOpenAI` and a
semaphore sending the same request bodies (built beforehand) and parsing the JSON replies, with
no grading at all. The request span is the server's view: from the first request's arrival to the
last reply, against the ideal. The answers are seed-dev's (about 550 characters, so the offline
second opinion on every LLM grade costs what it costs on real answers) when ../shared/data is
there, else short synthetic ones. "in flight" is the server's view too: the requests it was serving,
on average over the span (the concurrency actually reached). `--trace` adds how long mlgrade's
event loop was held (a 1 ms lag probe over the run): time in which no request went out.
Goals (issue 22): at concurrency 16, wall <= 1.05x the loop's and ideal/span >= 0.9.

    /work/venv/bin/python benchmarks/batch_throughput.py [--n 200] [--latency 0.4] [--concurrency 1 4 16] [--trace]
        [--warm 20] [--also-thread] [--without-second-opinion]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QIDS = ("q01", "q05", "q07", "q17", "q25")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, latency: float) -> None:
    """The tests' fake server, tuned to stand in for a remote API under load: TCP_NODELAY (else
    Nagle + delayed ACK add ~40 ms to every reply written in two pieces) and a listen backlog
    above 5 (else a burst of new connections waits a SYN retry, ~1 s)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from fake_openai_server import FakeOpenAIServer

    srv = FakeOpenAIServer(port=port, latency=latency)
    handler = srv.httpd.RequestHandlerClass
    handler.disable_nagle_algorithm = True
    spans: list[tuple[float, float]] = []
    post, get = handler.do_POST, handler.do_GET

    def timed_post(self) -> None:  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        post(self)
        with srv.lock:
            spans.append((started, time.perf_counter()))

    def span_get(self) -> None:  # type: ignore[no-untyped-def]
        if not self.path.endswith("/span"):
            return get(self)
        with srv.lock:
            got = {"n": len(spans), "span": max(e for _, e in spans) - min(s for s, _ in spans),
                   "busy": sum(e - s for s, e in spans)} if spans else {"n": 0}
            spans.clear()
        self._send(200, got)

    handler.do_POST, handler.do_GET = timed_post, span_get
    srv.httpd.socket.listen(256)
    srv.httpd.serve_forever()


def server_span(base: str) -> dict:
    """The span of the requests since the last call, as the server saw them (and reset it)."""
    return json.loads(urllib.request.urlopen(base + "/span", timeout=5).read())


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--latency", str(latency)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/models", timeout=1).read()
            return proc, base
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the fake server did not start")


SEED = ROOT.parent / "shared" / "data" / "seed-dev.jsonl"


def answers(n: int, tag: str, source: Path | None) -> list[tuple[str, str]]:
    """(question id, answer) pairs: seed-dev's answers in turn, or short synthetic ones. Each carries
    its tag so no two runs share a cache entry."""
    if source is not None and source.exists():
        rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [(f"q{int(r['question_number']):02d}", f"{r['answer']} ({tag} {i})")
                for i, r in ((i, rows[i % len(rows)]) for i in range(n))]
    return [(QIDS[i % len(QIDS)], f"Answer {tag} {i}: labelled and unlabelled data; scale features; "
                                  "use a rolling-origin split.") for i in range(n)]


def write_answers(path: Path, n: int, tag: str, source: Path | None = None) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for i, (qid, answer) in enumerate(answers(n, tag, source)):
            fh.write(json.dumps({"id": f"{tag}-{i}", "question_id": qid, "answer": answer}) + "\n")


class LagProbe:
    """How long the event loop is held: a task that sleeps 1 ms and records how late it wakes.
    Lateness over 5 ms is a callback (or another thread holding the GIL) keeping the loop from
    sending requests and reading replies."""

    def __init__(self) -> None:
        self.lags: list[float] = []

    async def probe(self, stop: Any) -> None:
        import asyncio

        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            self.lags.append(time.perf_counter() - started - 0.001)

    def summary(self) -> str:
        lags = sorted(self.lags) or [0.0]
        return (f"loop held > 5 ms: {sum(x for x in lags if x > 0.005):.2f} s in all, "
                f"p99 {lags[int(0.99 * (len(lags) - 1))] * 1000:.1f} ms, max {lags[-1] * 1000:.0f} ms")


def children_cpu() -> float:
    """CPU seconds of mlgrade's child processes: those waited for so far (the sandbox hosts, ended
    with each batch; not the server, which is reaped only at the end), and the batch's worker process,
    which outlives a batch (read from /proc while it runs; Linux), with its own children waited for
    (the sandbox hosts of the answers' code it ran, closed at the end of each batch)."""
    import resource

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker = 0.0
    opinions = sys.modules.get("mlgrade.batch.opinions")
    proc = getattr(getattr(opinions, "_worker", None), "proc", None)
    if proc is not None and proc.poll() is None:
        try:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            worker = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
        except (OSError, ValueError, IndexError):
            pass
    return used.ru_utime + used.ru_stime + worker


def run(base: str, work: Path, n: int, concurrency: int, tag: str, source: Path | None = None,
        probe: LagProbe | None = None) -> tuple[float, float, float]:
    import asyncio

    from mlgrade.batch.engine import agrade_many
    from mlgrade.config import load_settings
    from mlgrade.rubrics import load_rubrics

    bank = load_rubrics()  # loaded once at start-up by the CLI too; not part of grading throughput

    settings = load_settings(base_url=base, grader="llm", model="gpt-4.1-mini", home=str(work / "home"))
    inp = work / f"{tag}.jsonl"
    write_answers(inp, n, tag, source)

    async def go() -> Any:
        stop = asyncio.Event()
        watch = asyncio.create_task(probe.probe(stop)) if probe is not None else None
        try:
            return await agrade_many([inp], work / f"{tag}.out.jsonl", settings=settings, bank=bank,
                                     concurrency=concurrency, use_cache=False)
        finally:
            stop.set()
            if watch is not None:
                await watch

    started, cpu, child = time.perf_counter(), time.process_time(), children_cpu()
    summary = asyncio.run(go())
    wall = time.perf_counter() - started
    assert summary.run.graded == n, summary.run
    return wall, (time.process_time() - cpu) / n, children_cpu() - child


def sdk_loop(base: str, n: int, concurrency: int, tag: str, source: Path | None) -> tuple[float, float]:
    """What a user would write by hand: AsyncOpenAI, a semaphore, the same request bodies (built
    before the clock starts), each reply's JSON parsed. Returns (wall s, CPU ms per answer)."""
    import asyncio

    from openai import AsyncOpenAI

    from mlgrade.config import load_settings
    from mlgrade.graders.llm import LLMGrader
    from mlgrade.rubrics import load_rubrics

    bank = load_rubrics()
    grader = LLMGrader(load_settings(base_url=base, grader="llm", model="gpt-4.1-mini"))
    bodies = [grader.build_request(bank.get(qid), answer) for qid, answer in answers(n, tag, source)]

    async def go() -> float:
        client = AsyncOpenAI(base_url=base, api_key="sk-bench", max_retries=0)
        gate = asyncio.Semaphore(concurrency)

        async def one(body: dict) -> None:
            async with gate:
                reply = await client.chat.completions.create(**body)
                json.loads(reply.choices[0].message.content or "{}")

        started = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        wall = time.perf_counter() - started
        await client.close()
        return wall

    cpu = time.process_time()
    wall = asyncio.run(go())
    return wall, (time.process_time() - cpu) / n * 1000


def _variant(args: Any, base: str, work: Path, c: int, i: int, source: Path | None, loop: float, ideal: float,
             label: str, second: str) -> None:
    """mlgrade again with the second opinion in the finalize thread (no worker process), or with
    none at all: what the worker process and the second opinion cost, against the same loop."""
    import mlgrade.batch.opinions as opinions
    import mlgrade.grading as grading

    kept = grading.second_opinion, opinions.MIN_ANSWERS
    opinions.MIN_ANSWERS = 10**12
    if second == "none":
        grading.second_opinion = lambda *a, **k: None
    try:
        probe = LagProbe() if args.trace else None
        wall, cpu, child = run(base, work, args.n, c, f"run{i}-c{c}-{second}", source, probe)
    finally:
        grading.second_opinion, opinions.MIN_ANSWERS = kept
    seen = server_span(base)
    span = seen["span"]
    print(f"{label:>11}  {wall:>9.2f}  {'':>7}  {wall / loop:>11.2f}x  {ideal / wall:>10.2f}  "
          f"{ideal / span:>10.2f}  {'':>15}  {cpu * 1000:>21.1f}  {'':>5}  {seen['busy'] / span:>9.1f}", flush=True)
    print(f"{'':>11}  children's CPU {child:.2f} s; mlgrade + children {cpu * 1000 + child * 1000 / args.n:.1f} ms/answer"
          + (f"; mlgrade's {probe.summary()}" if probe else ""), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--latency", type=float, default=0.4)
    ap.add_argument("--answers", type=Path, default=SEED, help="seed-dev-shaped JSONL (default: ../shared's seed-dev; "
                                                                 "short synthetic answers when it is absent)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--without-second-opinion", action="store_true",
                    help="also run mlgrade with the offline second opinion switched off: its share of the wall time")
    ap.add_argument("--warm", type=int, default=20,
                    help="answers graded before the measured runs (default 20: the second-opinion worker, for "
                         "batches of 48 or more, then starts cold in the first measured run, as in a new CLI "
                         "process; 125: warm, as for a later batch of the same process)")
    ap.add_argument("--also-thread", action="store_true",
                    help="also run mlgrade with the second opinion in the finalize thread instead of the worker "
                         "process (batch.opinions): which is faster, in the same run")
    ap.add_argument("--trace", action="store_true",
                    help="also report how long mlgrade's event loop was held (a 1 ms lag probe over the run)")
    ap.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve, args.latency)
        return
    proc, base = start_server(args.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            os.environ["MLGRADE_HOME"] = str(work / "home")
            source = args.answers if args.answers.exists() else None
            # imports, client, capability probe: paid once, not per answer. With --warm 125 (every
            # seed-dev question) the offline grader has compiled every rubric, in the batch's process
            # and in the second-opinion worker, which a later batch of the same process reuses
            run(base, work, args.warm, 4 if args.warm <= 20 else 16, "warmup", source)
            sdk_loop(base, 20, 4, "warmup-sdk", source)
            server_span(base)
            print(f"{args.n} answers ({'seed-dev, ~550 chars' if source else 'short synthetic'}), "
                  f"{args.latency * 1000:.0f} ms per request (server in its own process)")
            print("ideal = n x latency / concurrency; loop = AsyncOpenAI + semaphore, same bodies, no grading; "
                  "span = first request in to last reply out, at the server; in flight = requests being served "
                  "there, on average over the span")
            print(f"{'concurrency':>11}  {'mlgrade s':>9}  {'loop s':>7}  {'mlgrade/loop':>12}  {'ideal/wall':>10}  "
                  f"{'ideal/span':>10}  {'loop ideal/span':>15}  {'CPU ms/answer mlgrade':>21}  {'loop':>5}  "
                  f"{'in flight':>9}  {'loop':>4}")
            for i, c in enumerate(args.concurrency):
                ideal = args.n * args.latency / c
                probe = LagProbe() if args.trace else None
                wall, cpu, child = run(base, work, args.n, c, f"run{i}-c{c}", source, probe)
                seen = server_span(base)
                span = seen["span"]
                loop, loop_cpu = sdk_loop(base, args.n, c, f"loop{i}-c{c}", source)
                loop_seen = server_span(base)
                loop_span = loop_seen["span"]
                print(f"{c:>11}  {wall:>9.2f}  {loop:>7.2f}  {wall / loop:>11.2f}x  {ideal / wall:>10.2f}  "
                      f"{ideal / span:>10.2f}  {ideal / loop_span:>15.2f}  {cpu * 1000:>21.1f}  {loop_cpu:>5.1f}  "
                      f"{seen['busy'] / span:>9.1f}  {loop_seen['busy'] / loop_span:>4.1f}", flush=True)
                load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
                print(f"{'':>11}  children's CPU {child:.2f} s in all (sandbox hosts, second-opinion worker); "
                      f"mlgrade + children {cpu * 1000 + child * 1000 / args.n:.1f} ms/answer; load average {load}",
                      flush=True)
                if probe is not None:
                    print(f"{'':>11}  mlgrade's {probe.summary()}", flush=True)
                if args.also_thread:
                    _variant(args, base, work, c, i, source, loop, ideal, "(thread)", "thread")
                if args.without_second_opinion:
                    _variant(args, base, work, c, i, source, loop, ideal, "(no 2nd)", "none")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
