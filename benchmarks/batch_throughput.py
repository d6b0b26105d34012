"""Batch throughput against a loopback OpenAI-compatible server with injected latency.

Starts tests/fake_openai_server.py in its own process (so its CPU does not compete with the
client's, as a remote API would not), then grades N answers with the llm grader through
`mlgrade.grade_many` at several concurrencies, and prints wall time against the ideal
(N × latency / concurrency). Goal: ideal / wall >= 0.9 at concurrency 16.

    /work/venv/bin/python benchmarks/batch_throughput.py [--n 200] [--latency 0.2] [--concurrency 1 4 16]
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
    srv.httpd.RequestHandlerClass.disable_nagle_algorithm = True
    srv.httpd.socket.listen(256)
    srv.httpd.serve_forever()


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


def write_answers(path: Path, n: int, tag: str) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"{tag}-{i}", "question_id": QIDS[i % len(QIDS)],
                                 "answer": f"Answer {tag} {i}: labelled and unlabelled data; scale features; "
                                           "use a rolling-origin split."}) + "\n")


def run(base: str, work: Path, n: int, concurrency: int, tag: str) -> tuple[float, float]:
    from mlgrade.batch.engine import grade_many
    from mlgrade.config import load_settings
    from mlgrade.rubrics import load_rubrics

    bank = load_rubrics()  # loaded once at start-up by the CLI too; not part of grading throughput

    settings = load_settings(base_url=base, grader="llm", model="gpt-4.1-mini", home=str(work / "home"))
    inp = work / f"{tag}.jsonl"
    write_answers(inp, n, tag)
    started, cpu = time.perf_counter(), time.process_time()
    summary = grade_many([inp], work / f"{tag}.out.jsonl", settings=settings, bank=bank, concurrency=concurrency,
                         use_cache=False)
    wall = time.perf_counter() - started
    assert summary.run.graded == n, summary.run
    return wall, (time.process_time() - cpu) / n


def raw_floor(base: str, n: int, concurrency: int) -> float:
    """Wall time of the same number of bare httpx POSTs at the same concurrency against the same
    server: what the server and the loopback cost with no grading at all."""
    import asyncio

    import httpx

    async def go() -> float:
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
            gate = asyncio.Semaphore(concurrency)
            body = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "ping"}]}

            async def one() -> None:
                async with gate:
                    await client.post("/chat/completions", json=body)

            started = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(n)))
            return time.perf_counter() - started

    return asyncio.run(go())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
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
            run(base, work, 20, 4, "warmup")  # imports, client, capability probe: paid once, not per answer
            print(f"{args.n} answers, {args.latency * 1000:.0f} ms per request (server in its own process)")
            print("ideal = n × latency / concurrency; floor = the same n bare httpx POSTs at that concurrency")
            print(f"{'concurrency':>11}  {'wall s':>7}  {'ideal s':>7}  {'ideal/wall':>10}  {'floor s':>7}  "
                  f"{'floor/wall':>10}  {'client CPU ms/answer':>20}")
            for i, c in enumerate(args.concurrency):
                wall, cpu = run(base, work, args.n, c, f"run{i}-c{c}")
                ideal = args.n * args.latency / c
                floor = raw_floor(base, args.n, c)
                print(f"{c:>11}  {wall:>7.2f}  {ideal:>7.2f}  {ideal / wall:>10.2f}  {floor:>7.2f}  {floor / wall:>10.2f}  "
                      f"{cpu * 1000:>20.1f}", flush=True)
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
