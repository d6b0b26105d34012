"""Grade through the OpenAI Batch API: half price, results within 24 hours, nothing left running.

`submit` streams the inputs exactly as `mlgrade batch` does (same ids, same skipped rows,
same resume), builds each request with the LLM grader's own `build_request`, writes them as
Batch API JSONL chunked to the per-file limits, uploads and creates one batch per chunk. A
local job (MLGRADE_HOME/batches/<job id>/) remembers the answers in a small SQLite manifest,
because the evidence checks need them when the results come back.

`collect` turns the results into the very same output lines as online grading: the reply is
validated with `parse_reply`, then `grading.finalize` checks evidence and scores. A request
that failed, or came back invalid, or never came back (expired batch) becomes `grader_error`
(`mlgrade batch --retry-errors` can regrade those online). `collect` is idempotent.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .inputs import iter_items
from .items import BatchItem
from .output import id_key, open_results, result_record
from ..config import Settings
from ..errors import GraderFailure, UsageError, quote_name
from ..grading import code_facts, error_grade, finalize, skip_reason, skipped_grade
from ..models import CodeTestResult
from ..pricing import estimate_cost
from ..rubrics import RubricBank, load_rubrics

ENDPOINT = "/v1/chat/completions"
MAX_REQUESTS_PER_FILE = 50_000  # the Batch API's limits per input file
MAX_BYTES_PER_FILE = 190 * 1024 * 1024  # 200 MB, with headroom
TERMINAL = ("completed", "failed", "expired", "cancelled")


def jobs_dir(settings: Settings) -> Path:
    from ..store import ensure_folder, home_label

    ensure_folder(settings.home, home_label(settings))  # one line naming MLGRADE_HOME, not a traceback
    return settings.home / "batches"


def _job_dir(settings: Settings, job_id: str) -> Path:
    d = jobs_dir(settings) / job_id
    if job_id and (d / "job.json").is_file():
        return d
    for meta in sorted(jobs_dir(settings).glob("*/job.json")) if jobs_dir(settings).is_dir() else []:
        if any(c.get("batch_id") == job_id for c in json.loads(meta.read_text())["chunks"]):
            return meta.parent  # a provider batch id names its job too
    raise UsageError(f"no batch job {quote_name(job_id)} under {jobs_dir(settings)} (see the id printed by --provider-batch)")


def _manifest(job: Path) -> sqlite3.Connection:
    db = sqlite3.connect(job / "manifest.sqlite", isolation_level=None)
    db.execute("CREATE TABLE IF NOT EXISTS items (custom_id TEXT PRIMARY KEY, item_id TEXT, question_id TEXT, "
               "answer TEXT, candidate TEXT, source TEXT, facts TEXT, chunk INTEGER, collected INTEGER DEFAULT 0)")
    return db


def _client(settings: Settings, client: Any) -> Any:
    if client is not None:
        return client
    from ..graders.client import make_client

    return make_client(settings)


async def _api(call: Any) -> Any:
    """One SDK call; its exceptions become one-line mlgrade errors."""
    from ..graders.client import translate_error
    from ..errors import ConfigError

    try:
        return await call
    except Exception as exc:
        err = translate_error(exc)
        if err is None:
            raise
        raise ConfigError(f"Batch API: {err.message}") from None


# --------------------------------------------------------------------------- submit


def submit(inputs: Iterable[str | Path], out: str | Path, *, settings: Settings, bank: RubricBank | None = None,
           dry_run: bool = False, client: Any = None, max_requests: int = MAX_REQUESTS_PER_FILE,
           max_bytes: int = MAX_BYTES_PER_FILE, wide: Any = None) -> dict[str, Any]:
    return asyncio.run(_submit(inputs, Path(out), settings=settings, bank=bank or load_rubrics(settings.rubrics_dir),
                               dry_run=dry_run, client=client, max_requests=max_requests, max_bytes=max_bytes,
                               wide=wide))


async def _submit(inputs: Iterable[str | Path], out: Path, *, settings: Settings, bank: RubricBank, dry_run: bool,
                  client: Any, max_requests: int, max_bytes: int, wide: Any = None) -> dict[str, Any]:
    from ..graders.llm import LLMGrader

    grader = LLMGrader(settings)
    job_id = f"mlg-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    job = jobs_dir(settings) / job_id
    job.mkdir(parents=True)
    db = _manifest(job)
    results = open_results(out, dry_run=dry_run)  # checked, locked and recovered like an online run
    rec, writer = results.__enter__()
    chunks: list[dict[str, Any]] = []
    fh = None
    skipped = 0
    seen: set[int] = set()
    try:
        db.execute("BEGIN")
        for item in iter_items(inputs, bank, wide):
            key = id_key(item.id)
            if key in rec.done or key in seen:
                continue
            seen.add(key)
            reason = item.skip_reason or skip_reason(item.answer, settings)
            if reason is not None:
                skipped += 1
                if writer is not None:
                    writer.write(_line(item, skipped_grade(item.question_id, reason,
                                                           rubric=bank.rubrics.get(item.question_id))))
                continue
            rubric = bank.get(item.question_id)
            facts = await code_facts(rubric, item.answer, settings)
            custom_id = f"r{sum(c['requests'] for c in chunks)}"  # short and unique; the manifest maps it back
            body = grader.build_request(rubric, item.answer, facts or None)
            line = json.dumps({"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body},
                              ensure_ascii=False) + "\n"
            size = len(line.encode("utf-8"))
            if not chunks or chunks[-1]["requests"] >= max_requests or chunks[-1]["bytes"] + size > max_bytes:
                if fh is not None:
                    fh.close()
                chunks.append({"file": f"requests-{len(chunks) + 1:03d}.jsonl", "requests": 0, "bytes": 0})
                fh = (job / chunks[-1]["file"]).open("w", encoding="utf-8")
            fh.write(line)  # type: ignore[union-attr]
            chunks[-1]["requests"] += 1
            chunks[-1]["bytes"] += size
            db.execute("INSERT INTO items VALUES (?,?,?,?,?,?,?,?,0)",
                       (custom_id, item.id, rubric.id, item.answer, item.candidate, item.source,
                        json.dumps([f.model_dump(mode="json") for f in facts]) if facts else None, len(chunks) - 1))
        db.execute("COMMIT")
    finally:
        if fh is not None:
            fh.close()
        results.__exit__(None, None, None)
        db.close()

    total = sum(c["requests"] for c in chunks)
    meta = {"job_id": job_id, "out": str(out.resolve()), "model": settings.model, "base_url": settings.base_url,
            "created": time.time(), "requests": total, "skipped": skipped, "chunks": chunks, "submitted": False}
    if not dry_run and chunks:
        api = _client(settings, client)
        for c in chunks:
            uploaded = await _api(api.files.create(file=job / c["file"], purpose="batch"))
            created = await _api(api.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h",
                                                    metadata={"mlgrade_job": job_id}))
            c.update(input_file_id=uploaded.id, batch_id=created.id, status=created.status)
            _save(job, meta)  # after each chunk: a crash mid-submit still knows what was created
        meta["submitted"] = True
        if client is None and hasattr(api, "close"):
            await api.close()
    _save(job, meta)
    if dry_run:
        message = (f"dry run: {total:,} requests in {len(chunks)} file(s) under {job} (not uploaded); "
                   f"{skipped:,} rows would be skipped")
    elif not chunks:
        message = f"nothing to submit ({skipped:,} rows skipped, {len(rec.done):,} already in {out})"
    else:
        message = (f"submitted {total:,} answers in {len(chunks)} batch(es) as job {job_id} ({skipped:,} rows skipped).\n"
                   f"Check with `mlgrade batch status {job_id}`; when it is done, `mlgrade batch collect {job_id}` "
                   f"writes the results to {out}.")
    return {**meta, "message": message, "exit_code": 0}


def _save(job: Path, meta: dict[str, Any]) -> None:
    tmp = job / "job.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    tmp.replace(job / "job.json")


def _line(item: BatchItem, grade: Any) -> dict[str, Any]:
    return result_record(item.id, grade.model_dump(mode="json"), candidate=item.candidate, source=item.source,
                         answer=item.answer)


# --------------------------------------------------------------------------- status


def status(job_id: str, *, settings: Settings, client: Any = None) -> dict[str, Any]:
    return asyncio.run(_status(job_id, settings=settings, client=client))


async def _refresh(job: Path, meta: dict[str, Any], api: Any) -> list[Any]:
    batches = []
    for c in meta["chunks"]:
        if not c.get("batch_id"):
            batches.append(None)
            continue
        b = await _api(api.batches.retrieve(c["batch_id"]))
        c["status"] = b.status
        counts = getattr(b, "request_counts", None)
        c["counts"] = {"total": getattr(counts, "total", 0), "completed": getattr(counts, "completed", 0),
                       "failed": getattr(counts, "failed", 0)} if counts is not None else {}
        batches.append(b)
    _save(job, meta)
    return batches


async def _status(job_id: str, *, settings: Settings, client: Any) -> dict[str, Any]:
    job = _job_dir(settings, job_id)
    meta = json.loads((job / "job.json").read_text())
    api = _client(settings, client)
    try:
        await _refresh(job, meta, api)
    finally:
        if client is None and hasattr(api, "close"):
            await api.close()
    done = sum(c.get("counts", {}).get("completed", 0) for c in meta["chunks"])
    failed = sum(c.get("counts", {}).get("failed", 0) for c in meta["chunks"])
    states = ", ".join(f"{c.get('batch_id')}: {c.get('status')}" for c in meta["chunks"])
    finished = all(c.get("status") in TERMINAL for c in meta["chunks"])
    message = (f"job {meta['job_id']}: {done:,}/{meta['requests']:,} requests done, {failed:,} failed ({states})"
               + (f"\nready: run `mlgrade batch collect {meta['job_id']}`" if finished else ""))
    return {**meta, "finished": finished, "completed": done, "failed": failed, "message": message}


# --------------------------------------------------------------------------- collect


def collect(job_id: str, *, settings: Settings, client: Any = None, bank: RubricBank | None = None) -> dict[str, Any]:
    return asyncio.run(_collect(job_id, settings=settings, client=client, bank=bank or load_rubrics(settings.rubrics_dir)))


async def _lines(api: Any, file_id: str | None) -> Any:
    if not file_id:
        return
    async with api.files.with_streaming_response.content(file_id) as resp:
        async for line in resp.iter_lines():
            if line.strip():
                yield json.loads(line)


async def _collect(job_id: str, *, settings: Settings, client: Any, bank: RubricBank) -> dict[str, Any]:
    from ..graders.llm import LLMGrader
    from .aggregate import aggregate_file

    job = _job_dir(settings, job_id)
    meta = json.loads((job / "job.json").read_text())
    out = Path(meta["out"])
    grader = LLMGrader(settings)
    grader.model = meta["model"]
    db = _manifest(job)
    api = _client(settings, client)
    results = open_results(out)  # held while collecting: no other run appends meanwhile
    rec, writer = results.__enter__()
    written = errors = 0
    pending = []
    try:
        batches = await _refresh(job, meta, api)
        for index, (chunk, b) in enumerate(zip(meta["chunks"], batches)):
            if b is None or b.status not in TERMINAL:
                pending.append(chunk.get("batch_id"))
                continue
            for file_id in (getattr(b, "output_file_id", None), getattr(b, "error_file_id", None)):
                async for res in _lines(api, file_id):
                    row = db.execute("SELECT * FROM items WHERE custom_id = ? AND collected = 0",
                                     (res.get("custom_id"),)).fetchone()
                    if row is None:
                        continue
                    grade = _grade_result(row, res, grader, bank)
                    if id_key(row[1]) not in rec.done:
                        writer.write(_record(row, grade))
                        written += 1
                        errors += grade.outcome != "graded"
                    db.execute("UPDATE items SET collected = 1 WHERE custom_id = ?", (row[0],))
            # what a finished batch never answered (expired, cancelled, failed) is an error, not a gap
            for row in db.execute("SELECT * FROM items WHERE chunk = ? AND collected = 0", (index,)).fetchall():
                rubric = bank.get(row[2])
                grade = error_grade(rubric, GraderFailure(f"no result from the Batch API (batch {b.status})"),
                                    grader=grader)
                if id_key(row[1]) not in rec.done:
                    writer.write(_record(row, grade))
                    written += 1
                    errors += 1
                db.execute("UPDATE items SET collected = 1 WHERE custom_id = ?", (row[0],))
    finally:
        results.__exit__(None, None, None)
        db.close()
        if client is None and hasattr(api, "close"):
            await api.close()
    agg = aggregate_file(out) if out.exists() else None
    bad = (agg.outcomes.get("grader_error", 0) + agg.outcomes.get("skipped", 0)) if agg else 0
    message = f"collected {written:,} results into {out} ({errors:,} grader errors)"
    if pending:
        message += f"; {len(pending)} batch(es) not finished yet ({', '.join(map(str, pending))}): run collect again later"
    return {**meta, "written": written, "errors": errors, "pending": pending, "message": message,
            "results": agg.to_dict() if agg else None, "exit_code": 1 if bad else 0}


def _record(row: tuple[Any, ...], grade: Any) -> dict[str, Any]:
    return result_record(row[1], grade.model_dump(mode="json"), candidate=row[4], source=row[5], answer=row[3])


def _grade_result(row: tuple[Any, ...], res: dict[str, Any], grader: Any, bank: RubricBank) -> Any:
    """One Batch API result line → a Grade, through the same parse, evidence checks and scoring as online."""
    rubric = bank.get(row[2])
    answer = row[3]
    facts = [CodeTestResult.model_validate(f) for f in json.loads(row[6])] if row[6] else []
    response = res.get("response") or {}
    body = response.get("body") or {}
    if res.get("error") or response.get("status_code") != 200:
        err = res.get("error") or body.get("error") or {}
        reason = f"Batch API request failed: HTTP {response.get('status_code')}: {err.get('message') or err or 'no reply'}"
        return error_grade(rubric, GraderFailure(reason, raw_reply=json.dumps(body) if body else None), grader=grader,
                           code_tests=facts)
    choices = body.get("choices") or [{}]
    content = (choices[0].get("message") or {}).get("content")
    try:
        assessment = grader.parse_reply(rubric, answer, content, body.get("usage"), model=body.get("model") or grader.model)
    except GraderFailure as failure:
        return error_grade(rubric, failure, grader=grader, code_tests=facts)
    grade = finalize(rubric, answer, assessment, grader="llm", code_tests=facts)
    return grade.model_copy(update={"cost_usd": estimate_cost(assessment.model, assessment.usage, batch=True)})
