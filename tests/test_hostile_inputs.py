"""Issue 12, inputs: a bad row is a skipped row (file:line, reason), never the end of the run."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from batch_helpers import SlowGrader, read_out
from mlgrade.batch.engine import grade_many

GOOD = "Overfitting is when a model memorises noise in the training data and fails to generalise."


def by_source(rows: list[dict]) -> dict[str, dict]:
    return {r["source"]: r for r in rows}


def test_jsonl_line_nested_100000_deep_is_a_skipped_row(tmp_path, bank):
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": "r1", "question_id": "q05", "answer": GOOD}) + "\n"
                   + "[" * 100_000 + "]" * 100_000 + "\n"
                   + '{"id": "deep", "question_id": "q05", "answer": ' + "[" * 50_000 + "]" * 50_000 + "}\n"
                   + json.dumps({"id": "r4", "question_id": "q05", "answer": GOOD + " Again."}) + "\n")
    out = tmp_path / "out.jsonl"
    grade_many([inp], out, grader=SlowGrader(), bank=bank)
    rows = by_source(read_out(out))
    assert len(rows) == 4
    assert rows[f"{inp}:2"]["outcome"] == "skipped" and "nested too deeply" in rows[f"{inp}:2"]["error"]
    assert rows[f"{inp}:3"]["outcome"] == "skipped"
    assert rows[f"{inp}:1"]["outcome"] == rows[f"{inp}:4"]["outcome"] == "graded"
    grade_many([inp], out, grader=SlowGrader(), bank=bank)  # and a rerun does not crash either
    assert len(read_out(out)) == 4


def test_jsonl_invalid_utf8_is_a_skipped_row_and_never_crashes_the_writer(tmp_path, cli):
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b'{"id": "u1", "question_id": "q05", "answer": "noise \xff\xfe memorised by the model"}\n'
                    + json.dumps({"id": "u2", "question_id": "q05", "answer": GOOD}).encode() + b"\n")
    out = tmp_path / "out.jsonl"
    res = cli(["batch", inp, "--out", out, "--grader", "offline"])
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert f"{inp}:1: not valid UTF-8" in res.stderr
    rows = by_source(read_out(out))
    assert rows[f"{inp}:1"]["outcome"] == "skipped" and rows[f"{inp}:2"]["outcome"] == "graded"
    again = cli(["batch", inp, "--out", out, "--grader", "offline"])  # a rerun never crashes either
    # and exits 0: the first run skipped and reported the row; nothing new was skipped (issue 26)
    assert again.exit_code == 0 and "Traceback" not in again.output


def test_csv_invalid_utf8_row_is_skipped_and_later_rows_graded(tmp_path, bank):
    inp = tmp_path / "in.csv"
    inp.write_bytes(b"id,question_id,answer\nc1,q05,bad \xff bytes here\nc2,q05," + GOOD.encode() + b"\n")
    out = tmp_path / "out.jsonl"
    grade_many([inp], out, grader=SlowGrader(), bank=bank)
    rows = by_source(read_out(out))
    assert rows[f"{inp}:2"]["outcome"] == "skipped" and "UTF-8" in rows[f"{inp}:2"]["error"]
    assert rows[f"{inp}:3"]["outcome"] == "graded"


@pytest.mark.parametrize("quoted_newlines", [False, True])
def test_csv_field_over_the_csv_module_limit_skips_that_row_only(tmp_path, bank, quoted_newlines):
    inp = tmp_path / "in.csv"
    huge = ("word\n" if quoted_newlines else "word ") * 30_000  # 150,000 characters > csv's 131,072
    with inp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "question_id", "answer"])
        w.writerow(["c1", "q05", GOOD])
        w.writerow(["c2", "q05", huge])
        w.writerow(["c3", "q05", GOOD + " Third row."])
        w.writerow(["c4", "q05", 'He said "use dropout", which helps against overfitting.'])
    out = tmp_path / "out.jsonl"
    grader = SlowGrader()
    grade_many([inp], out, grader=grader, bank=bank)
    rows = {r["id"]: r for r in read_out(out)}
    assert set(rows) == {"c1", "c2", "c3", "c4"}
    assert rows["c2"]["outcome"] == "skipped" and "over the limit" in rows["c2"]["error"]
    assert rows["c2"]["source"] == f"{inp}:3"
    assert [rows[k]["outcome"] for k in ("c1", "c3", "c4")] == ["graded"] * 3
    assert rows["c3"]["source"].endswith(f":{4 + (30_000 if quoted_newlines else 0)}")


def test_csv_row_beyond_the_reader_bound_is_skipped_and_the_next_row_read(tmp_path, bank, monkeypatch):
    from mlgrade.batch import sheets

    monkeypatch.setattr(sheets, "MAX_ROW_CHARS", 200_000)  # the CSV readers' bound (sheets.open_csv)
    inp = tmp_path / "in.csv"
    inp.write_text('id,question_id,answer\nc1,q05,"' + "long\nline " * 50_000 + '"\nc2,q05,' + GOOD + "\n")
    out = tmp_path / "out.jsonl"
    grade_many([inp], out, grader=SlowGrader(), bank=bank)
    rows = read_out(out)
    assert [r["outcome"] for r in rows] == ["skipped", "graded"]
    assert "over 200,000 characters" in rows[0]["error"] and rows[1]["id"] == "c2"


def bomb_yaml(levels: int = 9) -> str:
    lines = ["- id: y0\n  question_id: q05\n  answer: " + json.dumps(GOOD) + "\n",
             '- id: bomb\n  question_id: q05\n  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n']
    prev = "a"
    for name in "bcdefghijklm"[: levels - 1]:
        lines.append(f"  {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n")
        prev = name
    lines.append(f"  answer: *{prev}\n")
    lines.append("- id: y2\n  question_id: q05\n  answer: " + json.dumps(GOOD + " After.") + "\n")
    return "".join(lines)


def test_yaml_alias_bomb_item_is_skipped_in_small_memory(tmp_path, bank):
    inp = tmp_path / "in.yaml"
    inp.write_text(bomb_yaml(levels=6))  # 9**6 leaves if expanded: small enough not to hang an unfixed run
    out = tmp_path / "out.jsonl"
    tracemalloc.start()
    try:
        grade_many([inp], out, grader=SlowGrader(), bank=bank)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    rows = {r["id"]: r for r in read_out(out)}
    bomb = next(r for r in rows.values() if r["outcome"] == "skipped")
    assert "aliases" in bomb["error"] and bomb["source"] == f"{inp}:4"
    assert rows["y0"]["outcome"] == rows["y2"]["outcome"] == "graded"
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_full_size_yaml_bomb_batch_stays_under_200_mb(tmp_path):
    inp = tmp_path / "in.yaml"
    inp.write_text(bomb_yaml(levels=9))  # 9**9 = 387M leaves if expanded
    # a 2 GB address-space cap turns an unfixed run into a quick MemoryError instead of a swapping machine;
    # VmHWM is this process's own peak (ru_maxrss would carry pytest's across exec)
    code = ("import re,resource,sys;resource.setrlimit(resource.RLIMIT_AS,(2*2**30,2*2**30));"
            "from mlgrade.cli import app\ntry:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    rc=e.code\n"
            "print('rc', rc, 'hwm', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))")
    res = subprocess.run([sys.executable, "-c", code, "batch", str(inp), "--out", str(tmp_path / "o.jsonl"),
                          "--grader", "offline"], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    _, rc, _, hwm_kb = res.stdout.split()[-4:]
    assert rc == "1" and "aliases" in res.stderr
    assert int(hwm_kb) < 200 * 1024, f"peak {int(hwm_kb) / 1024:.0f} MB"


def test_rubric_with_an_alias_bomb_in_its_tests_is_rejected_by_validate(tmp_path, cli, bank):
    import yaml

    rubric = bank.get("q24").model_dump(mode="json", exclude_none=True)
    folder = tmp_path / "rubrics"
    folder.mkdir()
    text = yaml.safe_dump({**rubric, "id": "x24", "number": 0}, sort_keys=False)
    bomb = ('\nbomb: &b0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
            + "".join(f"b{i}: &b{i} [" + ",".join([f"*b{i - 1}"] * 9) + "]\n" for i in range(1, 9)))
    (folder / "x24.yaml").write_text(text + bomb)
    res = cli(["rubrics", "validate", folder])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "aliases" in res.output and "x24.yaml" in res.output


def _special_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "answers"
    folder.mkdir()
    (folder / "q05-alice.md").write_text(GOOD)
    os.symlink("loop2.md", folder / "loop1.md")
    os.symlink("loop1.md", folder / "loop2.md")
    os.symlink("missing.md", folder / "q05-dangling.md")
    os.mkfifo(folder / "q05-fifo.md")
    (folder / "q05-dir.md").mkdir()
    return folder


def test_folder_special_entries_are_skipped_rows_and_never_opened(tmp_path, bank):
    folder = _special_folder(tmp_path)
    out = tmp_path / "out.jsonl"
    grade_many([folder], out, grader=SlowGrader(), bank=bank)  # an opened FIFO would block here forever
    rows = {Path(r["source"]).name: r for r in read_out(out)}
    assert rows["q05-alice.md"]["outcome"] == "graded"
    assert "loop" in rows["loop1.md"]["error"] and "loop" in rows["loop2.md"]["error"]
    assert "dangling" in rows["q05-dangling.md"]["error"]
    assert "FIFO" in rows["q05-fifo.md"]["error"] and "not opened" in rows["q05-fifo.md"]["error"]
    assert "directory" in rows["q05-dir.md"]["error"]
    assert len(rows) == 6 and all(r["outcome"] == "skipped" for n, r in rows.items() if n != "q05-alice.md")


def test_folder_device_is_a_skipped_row(tmp_path, bank):
    folder = tmp_path / "answers"
    folder.mkdir()
    try:
        os.mknod(folder / "q05-dev.md", 0o600 | 0o020000, os.makedev(1, 3))  # a character device like /dev/null
    except (PermissionError, OSError):
        os.symlink("/dev/zero", folder / "q05-dev.md")  # no mknod: a link to a device is the same case
    out = tmp_path / "out.jsonl"
    grade_many([folder], out, grader=SlowGrader(), bank=bank)
    [row] = read_out(out)
    assert row["outcome"] == "skipped" and "device" in row["error"] and "not opened" in row["error"]


LIMITED = ("import resource,sys;resource.setrlimit(resource.RLIMIT_AS,(1536*2**20,1536*2**20));"
           "from mlgrade.cli import main;sys.argv=['mlgrade']+sys.argv[1:];main()")


def test_grade_file_dev_zero_reads_a_bounded_amount_and_refuses(tmp_path):
    res = subprocess.run([sys.executable, "-c", LIMITED, "grade", "q05", "--file", "/dev/zero", "--grader", "offline"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr[-500:]
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: ") and "over the limit" in res.stderr


def test_endless_stdin_reads_a_bounded_amount_and_refuses(tmp_path):
    yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
    try:
        res = subprocess.run([sys.executable, "-c", LIMITED, "grade", "q05", "-", "--grader", "offline"],
                             stdin=yes.stdout, capture_output=True, text=True, timeout=60)
    finally:
        yes.kill()
        yes.wait()
    assert res.returncode == 2, res.stderr[-500:]
    assert res.stderr.count("\n") == 1 and "over the limit of 20,000 characters" in res.stderr


def test_bounded_read_still_takes_an_answer_at_the_limit(tmp_path, monkeypatch):
    from mlgrade.textfiles import read_text

    f = tmp_path / "a.md"
    f.write_text("é" * 100)
    assert read_text(f, max_chars=100) == "é" * 100
    from mlgrade.errors import UsageError

    with pytest.raises(UsageError, match="over the limit of 99"):
        read_text(f, max_chars=99)


def test_jsonl_line_far_over_the_limit_is_skipped_without_being_held(tmp_path, bank, monkeypatch):
    from mlgrade.batch import inputs

    monkeypatch.setattr(inputs, "MAX_ROW_CHARS", 10_000)
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": "big", "question_id": "q05", "answer": "x" * 100_000}) + "\n"
                   + json.dumps({"id": "ok", "question_id": "q05", "answer": GOOD}) + "\n")
    out = tmp_path / "out.jsonl"
    grade_many([inp], out, grader=SlowGrader(), bank=bank)
    rows = by_source(read_out(out))
    assert "far over the answer limit" in rows[f"{inp}:1"]["error"] and rows[f"{inp}:2"]["outcome"] == "graded"
