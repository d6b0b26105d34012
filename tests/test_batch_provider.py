"""--provider-batch: chunked JSONL, upload, create, status, collect → the same lines as online grading."""

from __future__ import annotations

import json

import pytest

from batch_helpers import answers, read_out, write_jsonl
from fake_batch_api import FakeBatchAPI
from mlgrade.batch import provider as provider_batch
from mlgrade.config import load_settings


@pytest.fixture
def api_settings(monkeypatch):
    def make(api):
        return load_settings(base_url=api.base_url, api_key="sk-test", grader="llm", model="gpt-4.1-mini")
    return make


def test_round_trip_through_the_batch_api(tmp_path, bank, api_settings):
    rows = answers(7) + [{"question_id": "q99", "answer": "x"}]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    # r1 fails at the provider, r2 comes back malformed, r4 is never answered (expired)
    with FakeBatchAPI(fail={"r1"}, malformed={"r2"}, drop={"r4"}, final_status="expired") as api:
        settings = api_settings(api)
        job = provider_batch.submit([inp], out, settings=settings, bank=bank, max_requests=3)
        assert job["requests"] == 7 and len(job["chunks"]) == 3  # chunked to the per-file limit
        assert len(api.batches) == 3 and [c["requests"] for c in job["chunks"]] == [3, 3, 1]
        uploaded = next(iter(api.files.values()))["_data"].decode().splitlines()
        first = json.loads(uploaded[0])
        assert first["url"] == "/v1/chat/completions" and first["body"]["messages"][-1]["role"] == "user"
        assert [r["outcome"] for r in read_out(out)] == ["skipped"]  # the bad row, at once

        status = provider_batch.status(job["job_id"], settings=settings)
        assert not status["finished"] and "0/7" in status["message"]
        early = provider_batch.collect(job["job_id"], settings=settings, bank=bank)
        assert early["written"] == 0 and len(early["pending"]) == 3

        api.finish()
        assert provider_batch.status(job["job_id"], settings=settings)["finished"]
        done = provider_batch.collect(job["job_id"], settings=settings, bank=bank)
        assert done["written"] == 7 and done["errors"] == 3 and done["exit_code"] == 1
        again = provider_batch.collect(job["chunks"][0]["batch_id"], settings=settings, bank=bank)  # by provider id
        assert again["written"] == 0  # idempotent

    results = read_out(out)
    by_id = {r["id"]: r for r in results}
    assert len(results) == 8 and len(by_id) == 8
    ids = [r["id"] for r in rows[:7]]
    errors = {ids[1]: "HTTP 500", ids[2]: "not valid JSON", ids[4]: "no result from the Batch API"}
    for item_id, reason in errors.items():
        assert by_id[item_id]["outcome"] == "grader_error" and reason in by_id[item_id]["error"]
        assert by_id[item_id]["score"] is None
    graded = [r for r in results if r["outcome"] == "graded"]
    assert len(graded) == 4
    for r in graded:  # scored by our code, evidence checked, priced at the Batch API's half rate
        assert r["grader"] == "llm" and r["rubric_hash"] and 0 <= r["score"] <= 100
        assert all(j["verified"] for j in r["judgments"])
        assert r["usage"]["input_tokens"] > 0 and r["cost_usd"] is not None
        assert r["candidate"] and r["source"].endswith(tuple(f":{i}" for i in range(1, 9)))


def test_batch_cost_is_half_the_online_price(tmp_path, bank, api_settings):
    from mlgrade.models import Usage
    from mlgrade.pricing import estimate_cost

    inp = write_jsonl(tmp_path / "in.jsonl", answers(1))
    with FakeBatchAPI() as api:
        settings = api_settings(api)
        job = provider_batch.submit([inp], tmp_path / "out.jsonl", settings=settings, bank=bank)
        api.finish()
        provider_batch.collect(job["job_id"], settings=settings, bank=bank)
    r = read_out(tmp_path / "out.jsonl")[0]
    usage = Usage(**r["usage"])
    assert r["cost_usd"] == pytest.approx(estimate_cost(r["model"], usage) / 2)


def test_resume_skips_ids_already_in_the_output(tmp_path, bank, api_settings):
    rows = answers(4)
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"id": rows[0]["id"], "outcome": "graded", "question_id": "q01", "score": 50}) + "\n")
    with FakeBatchAPI() as api:
        job = provider_batch.submit([inp], out, settings=api_settings(api), bank=bank)
    assert job["requests"] == 3


def test_dry_run_writes_files_but_uploads_nothing(tmp_path, bank, api_settings):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(3))
    with FakeBatchAPI() as api:
        job = provider_batch.submit([inp], tmp_path / "out.jsonl", settings=api_settings(api), bank=bank, dry_run=True)
        assert api.requests == [] and job["requests"] == 3
    assert not (tmp_path / "out.jsonl").exists()


def test_unknown_job_is_a_usage_error(api_settings, tmp_path):
    from mlgrade.errors import UsageError

    with FakeBatchAPI() as api, pytest.raises(UsageError, match="no batch job"):
        provider_batch.status("mlg-nope", settings=api_settings(api))


def test_cli_status_and_collect(tmp_path, cli, monkeypatch):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(2))
    with FakeBatchAPI() as api:
        monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        res = cli(["batch", inp, "--out", tmp_path / "out.jsonl", "--provider-batch", "--json"])
        assert res.exit_code == 0, res.output
        job_id = json.loads(res.stdout)["job_id"]
        assert "0/2" in cli(["batch", "status", job_id]).stdout
        api.finish()
        res = cli(["batch-collect", job_id])
        assert res.exit_code == 0, res.output
        assert "collected 2" in res.stdout
    assert len(read_out(tmp_path / "out.jsonl")) == 2
