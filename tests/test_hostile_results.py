"""Issue 12, results files: never destroy a file mlgrade did not write, never double a result,
one line and exit 2 for an --out that cannot work, a clean stop when the disk fills."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from batch_helpers import SlowGrader, answers, read_out, write_jsonl
from mlgrade.batch.engine import grade_many
from mlgrade.errors import MlgradeError, UsageError


def one_line_exit_2(res, *, progress: bool = False) -> str:  # type: ignore[no-untyped-def]
    """Exit 2 with exactly one `error:` line on stderr (after a progress bar when the run had started)."""
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    if not progress:
        assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
        return res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and res.stderr.rstrip("\n").endswith(errors[0]), res.stderr
    return errors[0]


# --------------------------------------------------------------------------- not ours: refuse


def test_out_pointing_at_the_input_is_refused_and_left_byte_identical(tmp_path, cli):
    inp = write_jsonl(tmp_path / "a.jsonl", answers(5))
    before = inp.read_bytes()
    err = one_line_exit_2(cli(["batch", inp, "--out", inp, "--grader", "offline"]))
    assert str(inp) in err and "not an mlgrade results file" in err
    assert inp.read_bytes() == before


@pytest.mark.parametrize("content", [b"my notes\nline two\n", b"no newline at all", b'{"id": "x"}\n',
                                     b'{"question_id": "q05", "answer": "a"}\n'])
def test_any_file_mlgrade_did_not_write_is_refused(tmp_path, cli, content):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(3))
    notes = tmp_path / "notes.txt"
    notes.write_bytes(content)
    err = one_line_exit_2(cli(["batch", inp, "--out", notes, "--grader", "offline"]))
    assert str(notes) in err
    assert notes.read_bytes() == content


def test_python_callers_are_refused_too(tmp_path, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(3))
    other = write_jsonl(tmp_path / "other.jsonl", answers(40))
    before = other.read_bytes()
    grader = SlowGrader()
    with pytest.raises(UsageError, match="not an mlgrade results file"):
        grade_many([inp], other, grader=grader, bank=bank)
    assert other.read_bytes() == before and grader.calls == []


def test_a_results_file_with_a_torn_last_line_and_a_damaged_line_still_resumes(tmp_path, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(30))
    out = tmp_path / "out.jsonl"
    grade_many([inp], out, grader=SlowGrader(), bank=bank, use_cache=False)
    lines = out.read_text().splitlines(keepends=True)
    lines[10] = lines[10][:40] + "\n"  # one damaged line in the middle
    out.write_text("".join(lines[:-1]) + lines[-1][:30])  # and a kill -9 mid-write
    grader = SlowGrader()
    summary = grade_many([inp], out, grader=grader, bank=bank, use_cache=False)
    assert len(grader.calls) == 2 and summary.recovery["corrupt_lines"] == 1
    rows = read_out(out)
    assert sorted(r["id"] for r in rows) == [f"a{i:05d}" for i in range(30)]


# --------------------------------------------------------------------------- the lock


HOLD = textwrap.dedent("""
    import fcntl, os, sys, time
    from pathlib import Path
    out = Path(sys.argv[1])
    fd = os.open(out.with_name("." + out.name + ".lock"), os.O_RDWR | os.O_CREAT)  # what a running batch holds
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, f"{os.getpid()}\\n".encode())
    print("locked", flush=True)
    time.sleep(60)
""")


@pytest.fixture
def held(tmp_path):
    """Another process holding the lock on tmp_path/out.jsonl (as a running batch does)."""
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    yield out, proc.pid
    proc.kill()
    proc.wait()


def test_a_second_run_on_the_same_out_is_refused_naming_the_holder(tmp_path, cli, held):
    out, pid = held
    inp = write_jsonl(tmp_path / "in.jsonl", answers(4))
    err = one_line_exit_2(cli(["batch", inp, "--out", out, "--grader", "offline"]))
    assert f"pid {pid}" in err and "in use by another mlgrade run" in err
    assert not out.exists() or out.read_text() == ""


def test_retry_errors_cannot_rewrite_while_another_run_holds_the_file(tmp_path, cli, bank, held):
    out, pid = held
    inp = write_jsonl(tmp_path / "in.jsonl", answers(4))
    out.write_text(json.dumps({"id": "a00000", "candidate": None, "source": "x", "question_id": "q01",
                               "outcome": "grader_error", "error": "boom"}) + "\n")
    before = out.read_bytes()
    err = one_line_exit_2(cli(["batch", inp, "--out", out, "--retry-errors", "--grader", "offline"]))
    assert f"pid {pid}" in err and out.read_bytes() == before


def test_the_lock_is_held_for_the_whole_run_and_retry_rewrites_atomically(tmp_path, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(8))
    out = tmp_path / "out.jsonl"
    bad = {r["answer"] for r in answers(8)[:3]}
    grade_many([inp], out, grader=SlowGrader(fail_answers=bad), bank=bank, use_cache=False)
    inode = out.stat().st_ino
    refused: list[bool] = []

    from mlgrade.batch.output import ResultsLock

    class Probe(SlowGrader):
        async def assess(self, rubric, answer, *, facts=None):  # type: ignore[no-untyped-def]
            try:
                ResultsLock(out).acquire().release()
                refused.append(False)
            except UsageError:
                refused.append(True)
            return await super().assess(rubric, answer, facts=facts)

    grade_many([inp], out, grader=Probe(), bank=bank, use_cache=False, retry_errors=True)
    assert refused == [True, True, True]
    assert out.stat().st_ino != inode  # rewritten through a new file renamed into place
    assert not list(tmp_path.glob("*.tmp"))
    rows = read_out(out)
    assert len(rows) == 8 and len({r["id"] for r in rows}) == 8 and all(r["outcome"] == "graded" for r in rows)


# --------------------------------------------------------------------------- report: last per id


def test_report_counts_the_last_result_per_id_and_warns(tmp_path, cli, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(4))
    out = tmp_path / "out.jsonl"
    grade_many([inp], out, grader=SlowGrader(), bank=bank)
    lines = out.read_text().splitlines(keepends=True)
    again = json.loads(lines[0])
    again.update(outcome="grader_error", score=None, band=None, error="later failure")
    out.write_text("".join(lines) + "".join(lines[1:3]) + json.dumps(again) + "\n")  # 3 duplicates
    res = cli(["report", out, "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert "3 duplicate result(s) ignored" in res.stderr
    rows = res.stdout.strip().splitlines()[1:]
    assert len(rows) == 4
    first = next(r for r in rows if r.startswith(again["id"]))
    assert "grader_error" in first and "later failure" in first
    md = cli(["report", out]).stdout
    assert md.count(f"`{again['id']}`") == 1 and "4 answers" in md


# --------------------------------------------------------------------------- --out that cannot work


def test_out_is_a_directory(tmp_path, cli):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(2))
    (tmp_path / "results").mkdir()
    err = one_line_exit_2(cli(["batch", inp, "--out", tmp_path / "results", "--grader", "offline"]))
    assert "is a directory" in err


def test_out_is_dev_full_is_refused_without_reading_it(tmp_path, cli):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(2))
    err = one_line_exit_2(cli(["batch", inp, "--out", "/dev/full", "--grader", "offline"]))
    assert "/dev/full" in err and "not a regular file" in err


def test_out_read_only_file(tmp_path, cli):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(2))
    out = tmp_path / "ro.jsonl"
    out.write_text("")
    if os.geteuid() == 0:  # root writes through mode bits: make the file immutable instead
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(out)]).returncode != 0:
            pytest.skip("running as root without chattr +i")
    else:
        out.chmod(0o444)
    try:
        err = one_line_exit_2(cli(["batch", inp, "--out", out, "--grader", "offline"]))
        assert "read-only" in err and str(out) in err
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(out)])
    assert out.read_text() == ""


def _unshare_available() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-Urm", "true"], capture_output=True).returncode == 0


needs_unshare = pytest.mark.skipif(not _unshare_available(), reason="needs unprivileged mount namespaces (unshare -Urm)")


@needs_unshare
def test_out_on_a_read_only_filesystem_and_on_a_full_disk(tmp_path):
    """Real mounts in a private namespace: a read-only bind mount, and a 64 KiB tmpfs filled up."""
    inp = write_jsonl(tmp_path / "in.jsonl", answers(2))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = f"""
        set -e
        mount -t tmpfs -o size=64k tmpfs {mnt}
        mkdir {mnt}/ro {mnt}/full
        mount --bind {mnt}/ro {mnt}/ro && mount -o remount,ro,bind {mnt}/ro
        dd if=/dev/zero of={mnt}/full/filler bs=1k count=64 2>/dev/null || true
        set +e
        {sys.executable} -m mlgrade batch {inp} --out {mnt}/ro/r.jsonl --grader offline; echo "rc=$?"
        {sys.executable} -m mlgrade batch {inp} --out {mnt}/full/r.jsonl --grader offline; echo "rc=$?"
    """
    res = subprocess.run(["unshare", "-Urm", "sh", "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "MLGRADE_HOME": str(tmp_path / "home")})
    assert res.stdout.count("rc=2") == 2, res.stdout + res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert "read-only file system" in errors[0]
    assert "no space left" in errors[1]
    assert "Traceback" not in res.stderr


def test_full_disk_is_refused_before_grading(tmp_path, monkeypatch, bank):
    from mlgrade.batch import output

    real = os.statvfs

    class Full:
        def __init__(self, st):  # type: ignore[no-untyped-def]
            self.f_flag, self.f_frsize, self.f_bavail = st.f_flag, st.f_frsize, 0

    monkeypatch.setattr(output.os, "statvfs", lambda p: Full(real(p)))
    inp = write_jsonl(tmp_path / "in.jsonl", answers(3))
    grader = SlowGrader()
    with pytest.raises(UsageError, match="no space left"):
        grade_many([inp], tmp_path / "out.jsonl", grader=grader, bank=bank)
    assert grader.calls == []


def test_enospc_mid_run_stops_cleanly_keeps_what_was_flushed_and_resumes(tmp_path, monkeypatch, bank, cli):
    from mlgrade.batch import output

    inp = write_jsonl(tmp_path / "in.jsonl", answers(20))
    out = tmp_path / "out.jsonl"
    real_write = os.write
    lines = {"n": 0}

    def filling_write(fd, data):  # type: ignore[no-untyped-def]
        if len(data) > 100:  # a result line (the lock's pid is a few bytes)
            lines["n"] += 1
            if lines["n"] > 6:
                real_write(fd, bytes(data)[:25])  # a partial line, then the disk is full
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(output.os, "write", filling_write)
    with pytest.raises(MlgradeError, match="no space left") as info:
        grade_many([inp], out, grader=SlowGrader(), bank=bank, use_cache=False, concurrency=1)
    assert "rerun the same command to resume" in str(info.value)
    kept = out.read_bytes()
    assert kept.count(b"\n") == 6  # every flushed line stays
    monkeypatch.setattr(output.os, "write", real_write)  # space freed
    grader = SlowGrader()
    grade_many([inp], out, grader=grader, bank=bank, use_cache=False)
    assert len(grader.calls) == 14
    rows = read_out(out)
    assert sorted(r["id"] for r in rows) == [f"a{i:05d}" for i in range(20)]


def test_enospc_through_the_cli_is_one_line(tmp_path, monkeypatch, cli):
    from mlgrade.batch import output

    inp = write_jsonl(tmp_path / "in.jsonl", answers(5))

    real = os.write

    def full(fd, data):  # type: ignore[no-untyped-def]
        if len(data) > 100:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(output.os, "write", full)
    res = cli(["batch", inp, "--out", tmp_path / "out.jsonl", "--grader", "offline"])
    monkeypatch.setattr(output.os, "write", real)
    err = one_line_exit_2(res, progress=True)
    assert "no space left on the device" in err and "resume" in err


def test_results_line_with_undecodable_text_is_written_escaped(tmp_path):
    from mlgrade.batch.output import OutputWriter

    out = tmp_path / "out.jsonl"
    with OutputWriter(out) as w:
        w.write({"id": "x", "question_id": "q01", "outcome": "skipped", "error": "bad \udcff byte"})
    assert json.loads(out.read_bytes())["error"] == "bad \udcff byte"


def test_sidecar_lock_is_hidden_next_to_the_results_while_a_run_holds_it(tmp_path, bank):
    inp = write_jsonl(tmp_path / "in.jsonl", answers(2))
    seen: list[bool] = []

    class Probe(SlowGrader):
        async def assess(self, rubric, answer, *, facts=None):  # type: ignore[no-untyped-def]
            seen.append((tmp_path / ".out.jsonl.lock").is_file())
            return await super().assess(rubric, answer, facts=facts)

    grade_many([inp], tmp_path / "out.jsonl", grader=Probe(), bank=bank)
    assert seen == [True, True]
    assert not (tmp_path / ".out.jsonl.lock").exists()  # removed by its holder on release (issue 26)
    assert Path(tmp_path / "out.jsonl").is_file()


def test_duplicate_detection_is_exact_even_when_the_filter_collides(tmp_path, monkeypatch):
    from mlgrade.batch import lines, report

    monkeypatch.setattr(lines, "_BLOOM_BITS", 64)  # nearly every id is a false candidate
    out = tmp_path / "out.jsonl"
    recs = [{"id": f"r{i}", "question_id": "q01", "outcome": "skipped", "error": f"v{i}"} for i in range(300)]
    recs += [{"id": "r5", "question_id": "q01", "outcome": "skipped", "error": "newer"}]
    out.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in recs))
    agg = report.aggregate_file(out)
    assert agg.total == 300 and agg.duplicates == 1
    errors = {rec["id"]: rec["error"] for _, rec in report.iter_records(out)}
    assert errors["r5"] == "newer" and len(errors) == 300
