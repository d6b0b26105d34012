"""Wide inputs (form, quiz and LMS exports): column → question mapping, candidates, dry-run
mapping, resume, errors, and the gradebook built from their results."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from batch_helpers import read_out, write_xlsx_shared_strings

from mlgrade.batch.engine import grade_many
from mlgrade.batch.gradebook import write_gradebook
from mlgrade.batch.inputs import iter_items
from mlgrade.batch.columns import WideOptions, normalise_text, plan_columns
from mlgrade.batch.wide import inspect_wide
from mlgrade.errors import UsageError
from mlgrade.graders.fake import FakeGrader
from mlgrade.rubrics import RubricBank

Q07 = "For a time-series dataset, which cross-validation technique would you suggest, and why?"
Q01 = "What is semi-supervised machine learning?"
Q05 = "Do feature values need to be scaled when their ranges vary greatly?"
Q25 = "What is ensemble learning?"

# ---------------------------------------------------------------------------- the three exports


def google_forms_csv(path: Path) -> tuple[Path, list[list[str]], dict[int, str]]:
    """Question texts as headers with small wording differences; returns rows and column → question."""
    header = ["Timestamp", "Email Address", "Your name",
              Q07.rstrip("?") + "  ",  # missing question mark, trailing spaces
              "3. " + Q01,  # numbered
              Q05.replace("greatly", "greatly ") + " (2 points)",  # points suffix
              "Any comments?"]
    rows = [["2024/05/01 10:00:00", "ann@example.com", "Ann", "Rolling origin, never shuffled k-fold.",
             "Few labels plus many unlabelled points.", "Yes for k-NN and SVM; trees do not care.", ""],
            ["2024/05/01 10:05:00", "bob@example.com", "Bob", "Forward chaining over time blocks.", "",
             "Only for distance-based models.", "The time was short, I would have liked a few more minutes"],
            ["2024/05/01 10:09:00", "cat@example.com", "Cat", "", "Labelled and unlabelled data together.", "", ""]]
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows])
    return path, rows, {4: "q07", 5: "q01", 6: "q05"}


def ms_forms_xlsx(path: Path) -> tuple[Path, list[list], dict[int, str]]:
    from openpyxl import Workbook

    header = ["ID", "Start time", "Completion time", "Email", "Name", Q25, "Points - " + Q25, "Feedback - " + Q25,
              Q07.lower()]
    import datetime as dt

    t = dt.datetime(2024, 5, 1, 9, 0)
    rows = [[1, t, t, "dan@example.com", "Dan", "Several models combined: bagging, boosting, stacking.", 3, "", "Walk forward."],
            [2, t, t, "eve@example.com", "Eve", None, None, None, "Time-ordered splits with an expanding window."],
            [3, t, t, "fay@example.com", "Fay", "Averaging many trees lowers variance.", 2, "ok", None]]
    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path, rows, {6: "q25", 9: "q07"}


def ms_forms_xlsx_shared_strings(path: Path) -> tuple[Path, list[list], dict[int, str]]:
    """The same export with its text in a shared-strings table, as Excel writes it."""
    _, rows, cols = ms_forms_xlsx(path.with_suffix(".openpyxl.xlsx"))
    header = ["ID", "Start time", "Completion time", "Email", "Name", Q25, "Points - " + Q25, "Feedback - " + Q25,
              Q07.lower()]
    rows = [[str(v) if hasattr(v, "isoformat") else v for v in r] for r in rows]
    write_xlsx_shared_strings(path, [header, *rows])
    return path, rows, cols


def lms_csv(path: Path) -> tuple[Path, list[list[str]], dict[int, str]]:
    header = ["Surname", "First name", "Email address", "State", "Started on", "Completed", "Time taken",
              "Grade/10.00", "Response 1", "Response 2", "Response 3"]
    rows = [["Lee", "Gus", "gus@example.com", "Finished", "1 May 2024 9:00", "1 May 2024 9:30", "30 mins", "7.00",
             "Bagging and boosting.", "No shuffling: rolling origin.", "Semi-supervised uses unlabelled data."],
            ["Moe", "Hal", "hal@example.com", "Finished", "1 May 2024 9:00", "1 May 2024 9:40", "40 mins", "5.00",
             "", "Expanding window splits.", "Some labels, lots of unlabelled examples."]]
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows])
    return path, rows, {9: "q25", 10: "q07", 11: "q01"}


LMS_MAP = {"Response 1": "q25", "Response 2": "q07", "Response 3": "q01"}


def _identity(export: str, row: list) -> str:
    return {"google": row[1], "ms": row[3], "lms": row[2]}[export]


def _check_graded_once(out: Path, grader: FakeGrader, rows: list[list], cols: dict[int, str], export: str) -> None:
    """Every non-empty answer graded exactly once, with the right candidate and question; empty cells skipped."""
    records = read_out(out)
    expected = {(_identity(export, row), q, str(row[c - 1]))
                for row in rows for c, q in cols.items() if row[c - 1] not in (None, "")}
    graded = [r for r in records if r["outcome"] == "graded"]
    assert len(graded) == len(expected)
    assert Counter((q, a) for q, a in grader.calls) == Counter((q, a) for _, q, a in expected)
    for r in records:
        line, col = (int(x) for x in r["source"].rsplit(":", 2)[1:])
        row = rows[line - 2]
        assert r["candidate"] == _identity(export, row) and r["question_id"] == cols[col]
        assert r["id"] == f"{r['candidate']}/{r['question_id']}"
        assert r["outcome"] == ("skipped" if row[col - 1] in (None, "") else "graded")
        if r["outcome"] == "skipped":
            assert r["error"] == "no answer" and r["score"] is None
    assert len(records) == len(rows) * len(cols)


# ---------------------------------------------------------------------------- grading


@pytest.mark.parametrize("export", ["google", "ms", "ms-shared", "lms"])
def test_each_export_grades_every_answer_once_with_the_right_candidate(tmp_path, bank, export):
    make = {"google": (google_forms_csv, "f.csv"), "ms": (ms_forms_xlsx, "f.xlsx"), "lms": (lms_csv, "f.csv"),
            "ms-shared": (ms_forms_xlsx_shared_strings, "f.xlsx")}[export]
    export = export.split("-")[0]
    path, rows, cols = make[0](tmp_path / make[1])
    opts = WideOptions(mapping=dict(LMS_MAP) if export == "lms" else {})
    grader = FakeGrader(default_status="covered")
    out = tmp_path / "out.jsonl"
    summary = grade_many([path], out, grader=grader, bank=bank, wide=opts, use_cache=False)
    _check_graded_once(out, grader, rows, cols, export)
    assert summary.exit_code == 1  # empty cells are skipped rows

    # resume: the ids are <candidate>/<question>, so a rerun grades nothing again
    again = grade_many([path], out, grader=FakeGrader(), bank=bank, wide=opts, use_cache=False)
    assert again.run.done == 0 and again.already_done == len(rows) * len(cols)
    # issue 26: the empty cells were skipped and reported by the first run; a clean rerun exits 0
    assert again.exit_code == 0

    # the gradebook: one row per candidate, questions in the input's column order, blanks not zeros
    book = list(csv.DictReader(io.StringIO(write_gradebook(out))))
    assert [b["candidate"] for b in book] == [_identity(export, r) for r in rows]
    header = list(book[0])
    assert header[1::2][: len(cols)] == [f"{q} score" for q in cols.values()]
    for b, row in zip(book, rows):
        for c, q in cols.items():
            empty = row[c - 1] in (None, "")
            assert (b[f"{q} score"] == "") is empty
            assert (f"{q}: no answer" in b["note"]) is empty
            if not empty:
                assert float(b[f"{q} score"]) == 100.0 and b[f"{q} band"] == "strong"
        assert float(b["total"]) == 100.0 * int(b["graded"])


def test_google_forms_mapping_and_normalisation(tmp_path, bank):
    path, _, cols = google_forms_csv(tmp_path / "g.csv")
    m = inspect_wide(path, bank)
    assert {c.index + 1: c.question_id for c in m.questions} == cols
    assert all(c.how == "text" and c.score == 100.0 for c in m.questions)
    assert m.candidate_label == "Email Address" and m.candidate_how == "email"
    assert [c.header for c in m.ignored] == ["Timestamp", "Any comments?"]
    assert (m.rows, m.answers, m.empty) == (3, 6, 3)
    assert any("Any comments?" in w and "looks like free-text answers" in w for w in m.warnings)
    assert normalise_text("  3. What IS  semi-supervised learning (2 points) ") == "what is semi supervised learning"
    assert normalise_text("Q12) Stemming vs. lemmatization?") == "stemming vs lemmatization"


def test_fuzzy_match_reports_its_score_and_respects_the_threshold(bank):
    header = ["name", "What is semisupervised machine learning", "Explain the k nearest neighbor algorithm"]
    m = plan_columns(header, bank)
    q = {c.header: c for c in m.questions}
    assert q[header[1]].question_id == "q01" and q[header[1]].how == "fuzzy" and 85 <= q[header[1]].score < 100
    assert q[header[2]].question_id == "q03"
    strict = plan_columns(header, bank, WideOptions(threshold=99.5, mapping={header[1]: "q01"}))
    assert [c.question_id for c in strict.questions] == ["q01"]  # q03's header no longer reaches the threshold


def test_ms_forms_xlsx_dry_run_mapping_json(tmp_path, cli):
    path, _, _ = ms_forms_xlsx(tmp_path / "ms.xlsx")
    res = cli(["batch", path, "--out", tmp_path / "o.jsonl", "--dry-run", "--json", "--grader", "offline"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    (m,) = data["wide"]
    assert [(q["column"], q["question_id"], q["how"]) for q in m["questions"]] == [(6, "q25", "text"), (9, "q07", "text")]
    assert m["candidate"] == {"columns": ["Email"], "how": "email"}
    assert {i["header"] for i in m["ignored"]} == {"Start time", "Completion time", "Points - " + Q25, "Feedback - " + Q25}
    assert {i["header"] for i in m["identity"]} == {"ID", "Email", "Name"}
    assert (m["rows"], m["answers"], m["empty"]) == (3, 4, 2)
    assert data["estimate"]["items"] == 4 and not (tmp_path / "o.jsonl").exists()


def test_lms_export_with_map_dry_run_text(tmp_path, cli):
    path, _, _ = lms_csv(tmp_path / "lms.csv")
    args = ["batch", path, "--out", tmp_path / "o.jsonl", "--dry-run", "--grader", "offline"]
    unmapped = cli(args + ["--strict"])
    assert unmapped.exit_code == 2 and "no column matches a question" in unmapped.stderr
    mapped = cli(args + sum((["--map", f"{k}={v}"] for k, v in LMS_MAP.items()), []))
    assert mapped.exit_code == 0, mapped.output
    out = mapped.stdout
    assert "candidate  ← 'First name + Last name'" not in out  # email wins over first + last
    assert "candidate  ← 'Email address' (email)" in out
    for k, v in LMS_MAP.items():
        assert any(f"'{k}'" in line and f"→ {v}  (map;" in line for line in out.splitlines())
    assert "ignored: 'State' (meta), 'Started on' (meta), 'Completed' (meta), 'Time taken' (meta), 'Grade/10.00' (meta)" in out
    assert "5 answers, 1 empty (skipped" in out and "dry run: 5 answers to grade" in out


def test_map_file_and_candidate_column(tmp_path, bank):
    path, rows, cols = lms_csv(tmp_path / "lms.csv")
    mf = tmp_path / "map.yaml"
    mf.write_text("Response 1: q25\nResponse 2: 7\n'Response 3': Q1\n")
    from mlgrade.batch.columns import load_map_file

    opts = WideOptions(mapping=load_map_file(mf), candidate_column="surname")
    items = list(iter_items([path], bank, opts))
    assert {(i.candidate, i.question_id) for i in items} == {(r[0], q) for r in rows for q in cols.values()}
    assert items[0].id == "Lee/q25" and items[0].source == f"{path}:2:9"


def test_first_and_last_name_make_the_candidate(bank):
    m = plan_columns(["First name", "Last name", "Q7"], bank)
    assert m.candidate_how == "first + last name" and m.candidate(["Ann", "Lee", "x"], 2) == "Ann Lee"
    assert m.candidate(["", "", "x"], 5) == "row-5"  # no name given: the row names the candidate


# ---------------------------------------------------------------------------- refusals


def test_header_matching_two_questions_equally_is_refused(tmp_path, cli, bank):
    extra = tmp_path / "rubrics"
    extra.mkdir()
    src = next((Path(__file__).resolve().parents[1] / "rubrics").glob("q25-*.yaml")).read_text()
    extra.joinpath("ens.yaml").write_text(src.replace("id: q25", "id: ensemble-b").replace("number: 25", "number: 0")
                                          .replace(Q25, "What is ensemble learning !"))
    p = tmp_path / "f.csv"
    p.write_text("Email,What is Ensemble Learning\nann@example.com,Many models.\n")
    res = cli(["batch", p, "--out", tmp_path / "o.jsonl", "--rubrics", extra, "--grader", "offline"])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "'What is Ensemble Learning' matches" in res.stderr and "equally" in res.stderr and "--map" in res.stderr
    assert not (tmp_path / "o.jsonl").exists()
    # and a fuzzy tie: one header, two questions one edit away from it
    base = bank.get("q01")
    two = RubricBank({"qa": base.model_copy(update={"id": "qa", "question": "Explain gradient boosted trees"}),
                      "qb": base.model_copy(update={"id": "qb", "question": "Explain gradient boosted treez"})})
    with pytest.raises(UsageError, match=r"matches q[ab] \((\d+\.\d)\) and q[ab] \(\1\) equally"):
        plan_columns(["Explain gradient boosted tree"], two)


def test_mapping_to_an_unknown_question_is_refused(tmp_path, cli):
    path, _, _ = lms_csv(tmp_path / "lms.csv")
    res = cli(["batch", path, "--out", tmp_path / "o.jsonl", "--map", "Response 1=q99"])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "--map 'Response 1'='q99': unknown question id 'q99'" in res.stderr
    res = cli(["batch", path, "--out", tmp_path / "o.jsonl", "--map", "Response 9=q07"])
    assert res.exit_code == 2 and "not in the header" in res.stderr
    res = cli(["batch", path, "--out", tmp_path / "o.jsonl", "--map", "Response 1"])
    assert res.exit_code == 2 and "expected COLUMN=QUESTION_ID" in res.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_header_cells_quoted_in_messages_are_short_and_escaped(tmp_path, cli):
    """A 1 MB header cell (or one with an ESC) is quoted as its first 60 characters + "…", escaped."""
    big = "Q" * 1_000_000
    p = tmp_path / "big.csv"
    p.write_text(f"Email,{big},\"bad\x1b[2Jname\"\nann@example.com,foo,bar\n")
    res = cli(["batch", p, "--out", tmp_path / "o.jsonl", "--grader", "offline"])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and len(res.stderr) < 400, res.stderr[:300]
    assert f"'{'Q' * 60}…'" in res.stderr and "'bad\\x1b[2Jname'" in res.stderr and "\x1b" not in res.stderr
    res = cli(["batch", p, "--out", tmp_path / "o.jsonl", "--map", "nope=q07"])
    assert res.exit_code == 2 and "not in the header" in res.stderr and len(res.stderr) < 400
    wide = tmp_path / "many.csv"  # thousands of columns: the list in the message stops after ten
    wide.write_text(",".join(f"col {i}" for i in range(5000)) + "\n" + ",".join("x" for _ in range(5000)) + "\n")
    res = cli(["batch", wide, "--out", tmp_path / "o.jsonl"])
    assert res.exit_code == 2 and "'col 9', … and 4,990 more" in res.stderr and len(res.stderr) < 400
    assert not (tmp_path / "o.jsonl").exists()


def test_a_long_unmatched_header_is_short_in_warnings_and_strict_errors(tmp_path, cli):
    p = tmp_path / "w.csv"
    long_q = "Why " + "Q" * 100_000 + "?"
    p.write_text(f"Email,q05,\"{long_q}\"\nann@example.com,Scale them for k-NN.,my free text answer here\n")
    loose = cli(["batch", p, "--out", tmp_path / "o.jsonl", "--dry-run", "--grader", "offline"])
    assert loose.exit_code == 0 and len(loose.stdout) < 2000, loose.stdout[:300]
    assert f"warning: column 'Why {'Q' * 56}…' matches no question" in loose.stdout
    assert '--map "COLUMN=qNN"' in loose.stdout  # too long to type: the hint names no column
    strict = cli(["batch", p, "--out", tmp_path / "o.jsonl", "--dry-run", "--strict"])
    assert strict.exit_code == 2 and strict.stderr.count("\n") == 1 and len(strict.stderr) < 400


def test_a_long_unknown_question_id_is_short_in_skip_reasons(tmp_path, cli):
    p = tmp_path / "a.jsonl"
    p.write_text(json.dumps({"id": "r1", "question_id": "q" * 100_000, "answer": "Some answer."}) + "\n")
    res = cli(["batch", p, "--out", tmp_path / "o.jsonl", "--grader", "offline"])
    assert res.exit_code == 1 and len(res.stderr) < 1000, res.stderr[:300]
    [row] = read_out(tmp_path / "o.jsonl")
    assert row["error"] == f"unknown question id '{'q' * 60}…'"
    res = cli(["grade", "x" * 100_000, "some answer", "--grader", "offline"])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and len(res.stderr) < 400


def test_two_columns_for_one_question_are_refused(bank):
    with pytest.raises(UsageError, match="both match q07"):
        plan_columns(["Email", "q07", "Question 7"], bank)


def test_xlsx_that_is_not_a_workbook(tmp_path, cli):
    fake = tmp_path / "export.xlsx"
    fake.write_text("Email,q07\nann@example.com,walk forward\n")
    res = cli(["batch", fake, "--out", tmp_path / "o.jsonl"])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith(f"error: {fake}: not an Excel workbook (.xlsx)")
    assert not (tmp_path / "o.jsonl").exists()
    import zipfile

    with zipfile.ZipFile(fake, "w") as z:  # a zip, but not a workbook
        z.writestr("hello.txt", "hi")
    res = cli(["batch", fake, "--out", tmp_path / "o.jsonl"])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "not an Excel workbook" in res.stderr


def test_xlsx_with_a_damaged_sheet_keeps_the_rows_before_the_damage(tmp_path, bank):
    import zipfile

    good = write_xlsx_shared_strings(tmp_path / "good.xlsx", [["Email", "q07"], ["ann@x", "Rolling origin."],
                                                             ["bob@x", "Walk forward."]])
    bad = tmp_path / "bad.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("sheet1.xml"):
                data = data[: data.index(b'<row r="3">') + 20]  # cut inside the third row
            dst.writestr(info, data)
    items = list(iter_items([bad], bank))
    assert items[0].ok and (items[0].candidate, items[0].answer) == ("ann@x", "Rolling origin.")
    assert not items[-1].ok and "unreadable worksheet" in items[-1].skip_reason


def test_strict_refuses_an_unmatched_column_that_looks_like_answers(tmp_path, cli):
    path, _, _ = google_forms_csv(tmp_path / "g.csv")
    loose = cli(["batch", path, "--out", tmp_path / "o.jsonl", "--dry-run"])
    assert loose.exit_code == 0 and "warning: column 'Any comments?'" in loose.stdout
    strict = cli(["batch", path, "--out", tmp_path / "o.jsonl", "--dry-run", "--strict"])
    assert strict.exit_code == 2 and "--strict" in strict.stderr and "'Any comments?'" in strict.stderr
    ok = cli(["batch", path, "--out", tmp_path / "o.jsonl", "--dry-run", "--strict", "--map", "Any comments?=-"])
    assert ok.exit_code == 0 and "warning" not in ok.stdout


def test_a_bad_row_is_a_skipped_row(tmp_path, bank):
    p = tmp_path / "w.csv"
    p.write_text("Email,q07,q01\nann@x,Rolling origin.,Few labels.\nbob@x,a,b,c,d\ncat@x,Walk forward,\n")
    items = list(iter_items([p], bank))
    assert [(i.candidate, i.question_id, i.skip_reason) for i in items] == [
        ("ann@x", "q07", None), ("ann@x", "q01", None), (None, "", "row has 5 cells but the header has 3"),
        ("cat@x", "q07", None), ("cat@x", "q01", "no answer")]
    assert items[2].source == f"{p}:3"


def test_long_csv_is_still_read_as_long(tmp_path, bank):
    p = tmp_path / "long.csv"
    p.write_text("question_id,answer,candidate\nq07,walk forward,ann\n")
    (item,) = iter_items([p], bank)
    assert item.ok and item.candidate == "ann" and item.source == f"{p}:2"


# ---------------------------------------------------------------------------- gradebook


def _rec(cand, q, source, outcome="graded", score=None, band=None, error=None):
    return {"id": f"{cand}/{q}", "candidate": cand, "source": source, "question_id": q, "outcome": outcome,
            "score": score, "band": band, "error": error}


def test_gradebook_blanks_notes_and_formula_safety(tmp_path):
    recs = [_rec("=HYPERLINK(\"http://x\")", "q07", "f.csv:2:5", score=80.0, band="strong"),
            _rec("=HYPERLINK(\"http://x\")", "q01", "f.csv:2:4", "grader_error", error="reply failed validation"),
            _rec("bob", "q01", "f.csv:3:4", score=0.0, band="poor"),
            _rec("bob", "q07", "f.csv:3:5", "skipped", error="no answer"),
            _rec("c\x00\x07l", "q07", "f.csv:4:5", score=50.0, band="adequate"),
            _rec("c\x00\x07l", "q07", "f.csv:5:5", score=90.0, band="strong"),  # same id again: the last counts
            {**_rec("c\x00\x07l", "q07", "g.csv:2", score=10.0, band="poor"), "id": "other"},  # a second answer
            _rec("dan", "q01", "f.csv:6:4", "grader_error", error="401 for key sk-abcdefghijklmnopqrstuvwx")]
    p = tmp_path / "r.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    rows = list(csv.reader(io.StringIO(write_gradebook(p))))
    assert rows[0] == ["candidate", "q01 score", "q01 band", "q07 score", "q07 band", "total", "graded", "note"]
    assert rows[1] == ["'=HYPERLINK(\"http://x\")", "", "", "80.0", "strong", "80.0", "1",
                       "q01: grader error (reply failed validation)"]
    assert rows[2] == ["bob", "0.0", "poor", "", "", "0.0", "1", "q07: no answer"]  # a real 0 stays 0
    assert rows[3][3:] == ["90.0", "strong", "90.0", "1", "q01: no result; q07: 2 answers, the first graded one is shown"]
    assert "sk-abc" not in rows[4][-1] and "REDACTED" in rows[4][-1] and rows[4][5] == ""  # nothing graded: no total

    from openpyxl import load_workbook

    out = write_gradebook(p, tmp_path / "gb.xlsx")
    ws = load_workbook(out).active
    got = list(ws.iter_rows(values_only=True))
    assert len(got) == 5 and got[1][0] == "=HYPERLINK(\"http://x\")" and ws["A2"].data_type == "s"
    assert got[3][0] == "c\ufffd\ufffdl"  # control characters would make the workbook unreadable
    assert got[1][3] == 80.0 and got[1][1] is None and got[2][1] == 0.0


def test_report_command_gradebook(tmp_path, cli):
    path, rows, _ = google_forms_csv(tmp_path / "g.csv")
    out = tmp_path / "out.jsonl"
    assert cli(["batch", path, "--out", out, "--grader", "offline"]).exit_code == 1  # empty cells skipped
    res = cli(["report", out, "--format", "gradebook", "--out", tmp_path / "gb.csv"])
    assert res.exit_code == 0, res.output
    book = list(csv.DictReader((tmp_path / "gb.csv").open()))
    assert [b["candidate"] for b in book] == [r[1] for r in rows]
    assert book[2]["q07 score"] == "" and "q07: no answer" in book[2]["note"]


# ---------------------------------------------------------------------------- size


def test_ten_thousand_row_wide_file_is_read_and_graded_whole(tmp_path, bank, monkeypatch):
    """Functional only; memory is measured in benchmarks/wide_memory.py."""
    from collections import deque

    from mlgrade import grading

    # the offline second opinion beside the fake grader was 80 % of this test's 20 s of CPU; it has
    # its own tests (test_review_flags.py), and this one is about reading and grading every row
    monkeypatch.setattr(grading, "second_opinion", lambda *args, **kwargs: None)

    p = tmp_path / "big.csv"
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Timestamp", "Email", Q07])
        for i in range(10_000):
            w.writerow(["2024-05-01", f"c{i}@example.com", "" if i % 10 == 0 else f"Rolling origin split {i}."])
    m = inspect_wide(p, bank)
    assert (m.rows, m.answers, m.empty, m.duplicate_candidates) == (10_000, 9_000, 1_000, 0)
    out = tmp_path / "out.jsonl"
    grader = FakeGrader(calls=deque(maxlen=1))  # type: ignore[arg-type]
    s = grade_many([p], out, grader=grader, bank=bank, use_cache=False, concurrency=16)
    assert s.results.outcomes == {"graded": 9_000, "skipped": 1_000}
    assert s.results.candidates["c9999@example.com"].graded == 1


def test_hostile_cells_are_skipped_answers_and_later_rows_still_read(tmp_path, bank):
    from mlgrade.batch.sheets import MAX_ROW_CHARS

    p = tmp_path / "w.csv"
    with p.open("wb") as fh:
        fh.write(b'Email,q07,q01\nann@x,"Rolling origin.",Few labels.\n')
        fh.write(b'bob@x,"' + b"x" * (MAX_ROW_CHARS + 10) + b'",ok\n')
        fh.write(b"cat@x,caf\xe9 latin-1,Fine answer.\n")
        fh.write(b"dan@x,Walk forward.,Labels plus unlabelled.\n")
    items = list(iter_items([p], bank))
    assert [(i.candidate, i.question_id, i.skip_reason) for i in items] == [
        ("ann@x", "q07", None), ("ann@x", "q01", None),
        (None, "", f"row is over {MAX_ROW_CHARS:,} characters (far over the answer limit)"),
        ("cat@x", "q07", "not valid UTF-8"), ("cat@x", "q01", None),
        ("dan@x", "q07", None), ("dan@x", "q01", None)]
    assert items[2].source == f"{p}:3" and items[5].source == f"{p}:5:2"


def test_map_file_on_the_command_line_and_map_overrides_it(tmp_path, cli):
    path, _, _ = lms_csv(tmp_path / "lms.csv")
    mf = tmp_path / "map.yaml"
    mf.write_text("Response 1: q25\nResponse 2: q07\nResponse 3: q05\n")
    res = cli(["batch", path, "--out", tmp_path / "o.jsonl", "--dry-run", "--json", "--map-file", mf,
               "--map", "Response 3=q01"])
    assert res.exit_code == 0, res.output
    (m,) = json.loads(res.stdout)["wide"]
    assert [(q["header"], q["question_id"], q["how"]) for q in m["questions"]] == [
        ("Response 1", "q25", "map"), ("Response 2", "q07", "map"), ("Response 3", "q01", "map")]
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just a list\n")
    res = cli(["batch", path, "--out", tmp_path / "o.jsonl", "--map-file", bad])
    assert res.exit_code == 2 and "expected a YAML mapping" in res.stderr


def test_gradebook_applies_reviewer_overrides_and_notes_unreviewed_flags(tmp_path, cli):
    recs = [_rec("ann", "q07", "f.csv:2:2", score=40.0, band="weak"),
            {**_rec("ann", "q01", "f.csv:2:3", score=90.0, band="strong"), "review": {"needed": True}},
            _rec("bob", "q07", "f.csv:3:2", score=70.0, band="adequate")]
    p = tmp_path / "r.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    (tmp_path / "r.reviews.jsonl").write_text(json.dumps(
        {"id": "ann/q07", "decision": "override", "score": 65.0, "band": "adequate"}) + "\n")
    res = cli(["report", p, "--format", "gradebook"])
    assert res.exit_code == 0, res.output
    book = list(csv.DictReader(io.StringIO(res.stdout)))
    assert (book[0]["q07 score"], book[0]["q07 band"], book[0]["total"]) == ("65.0", "adequate", "155.0")
    assert book[0]["note"] == "q07: reviewer set 65 (mlgrade 40); q01: needs review"
    assert book[1]["note"] == "q01: no result" and book[1]["q07 score"] == "70.0"
    res = cli(["report", p, "--format", "gradebook", "--reviews", tmp_path / "none.jsonl"])
    assert res.exit_code == 2 and "no such reviews file" in res.stderr


def test_an_anonymous_export_falls_back_to_a_unique_identity_column(tmp_path, bank):
    p = tmp_path / "anon.csv"
    p.write_text("ID,Email,Name,q07\n1,anonymous,,Rolling origin.\n2,anonymous,,Walk forward.\n3,anonymous,,Blocks.\n")
    m = inspect_wide(p, bank)
    assert m.candidate_label == "ID" and m.duplicate_candidates == 0
    assert any("column 'Email' has 1 distinct value(s) in 3 rows" in w and "named by column 'ID'" in w
               for w in m.warnings)
    fixed = inspect_wide(p, bank, WideOptions(candidate_column="ID"))
    assert fixed.duplicate_candidates == 0 and not fixed.warnings


def test_anonymous_form_export_is_graded_whole_by_timestamp_or_row(tmp_path, cli, bank):
    p = tmp_path / "anon.csv"
    p.write_text("Timestamp,Name,q07\n2024-05-01 10:00,Anonymous,Rolling origin.\n"
                 "2024-05-01 10:01,Anonymous,Walk forward.\n2024-05-01 10:02,Anonymous,Blocked splits.\n")
    out = tmp_path / "o.jsonl"
    res = cli(["batch", p, "--out", out, "--grader", "offline"])
    assert res.exit_code == 0, res.output  # before: 2 of 3 answers skipped as duplicates, exit 1
    assert "candidates are named by column 'Timestamp' (unique in every row)" in res.stderr
    assert [r["candidate"] for r in read_out(out)] == ["2024-05-01 10:00", "2024-05-01 10:01", "2024-05-01 10:02"]
    # no unique column at all: rows are numbered
    p.write_text("Name,q07\nAnonymous,Rolling origin.\nAnonymous,Walk forward.\n")
    assert [a.candidate for a in iter_items([p], bank)] == ["row-2", "row-3"]
    # a name that repeats in a few rows (a resubmission) still means a person: warned, named
    p.write_text("Email,Timestamp,q07\nann@x,1,A.\nbob@x,2,B.\nann@x,3,C.\n")
    m = inspect_wide(p, bank)
    assert m.candidate_label == "Email" and m.duplicate_candidates == 1
    assert any("use --candidate-column 'Timestamp' (unique in every row)" in w for w in m.warnings)


def test_workbook_with_responses_on_the_second_sheet_and_sheet_option(tmp_path, cli, bank):
    from openpyxl import Workbook

    p = tmp_path / "quiz.xlsx"
    wb = Workbook()
    wb.active.title = "Summary"
    wb.active.append(["Quiz", "Average"])
    wb.active.append(["ML basics", 3.2])
    ws = wb.create_sheet("Responses")
    ws.append(["Email", Q07, "q01"])
    ws.append(["ann@x", "Rolling origin.", "Few labels."])
    wb.save(p)
    m = inspect_wide(p, bank)
    assert m.sheet == "Responses" and [c.question_id for c in m.questions] == ["q07", "q01"]
    assert [a.candidate for a in iter_items([p], bank)] == ["ann@x", "ann@x"]
    res = cli(["batch", p, "--out", tmp_path / "o.jsonl", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert f"{p} (sheet 'Responses'): wide file" in res.stdout
    for chosen in ("Responses", "2", "responses"):
        assert inspect_wide(p, bank, WideOptions(sheet=chosen)).sheet == "Responses"
    with pytest.raises(UsageError, match="no column matches a question"):
        inspect_wide(p, bank, WideOptions(sheet="1"))
    res = cli(["batch", p, "--out", tmp_path / "o.jsonl", "--sheet", "Answers"])
    assert res.exit_code == 2 and "--sheet 'Answers': no such sheet (sheets: 'Summary', 'Responses'" in res.stderr
    del wb["Responses"]
    wb.create_sheet("Other").append(["x", "y"])
    wb.save(p)
    res = cli(["batch", p, "--out", tmp_path / "o.jsonl"])
    assert res.exit_code == 2 and "no sheet has a header with a question column" in res.stderr and "--sheet" in res.stderr


def test_semicolon_and_tab_separated_exports_are_read(tmp_path, bank):
    p = tmp_path / "eu.csv"
    p.write_text('Email;q07;"Comments; if any"\nann@x;"Rolling origin, never shuffled.";\nbob@x;Walk forward;ok\n')
    m = inspect_wide(p, bank)
    assert [c.question_id for c in m.questions] == ["q07"] and m.candidate_label == "Email"
    assert [(a.candidate, a.answer) for a in iter_items([p], bank)] == [
        ("ann@x", "Rolling origin, never shuffled."), ("bob@x", "Walk forward")]
    long = tmp_path / "long.csv"
    long.write_text("question_id;answer;candidate\nq07;Walk forward, in time order.;ann\n")
    [item] = iter_items([long], bank)
    assert (item.question_id, item.answer, item.candidate) == ("q07", "Walk forward, in time order.", "ann")
    tab = tmp_path / "tab.csv"
    tab.write_text("Email\tq07\nann@x\tRolling origin, by date.\n")
    assert [a.answer for a in iter_items([tab], bank)] == ["Rolling origin, by date."]


def test_candidate_column_that_is_a_question_and_map_on_long_files_are_errors(tmp_path, cli, bank):
    p = tmp_path / "w.csv"
    p.write_text("Email,Q7,q01\nann@x,Rolling origin.,Few labels.\n")
    res = cli(["batch", p, "--out", tmp_path / "o.jsonl", "--candidate-column", "Q7"])
    assert res.exit_code == 2 and "--candidate-column 'Q7' is the answer column of q07" in res.stderr
    # said on purpose (the column mapped away first): allowed
    m = inspect_wide(p, bank, WideOptions(mapping={"Q7": "-"}, candidate_column="Q7"))
    assert m.candidate_label == "Q7"
    long = tmp_path / "a.jsonl"
    long.write_text(json.dumps({"question_id": "q07", "answer": "Walk forward."}) + "\n")
    for flags in (["--map", "Response 1=q07"], ["--candidate-column", "Email"]):
        res = cli(["batch", long, "--out", tmp_path / "o.jsonl", *flags])
        assert res.exit_code == 2, res.output
        assert f"{flags[0]} applies to wide files" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert cli(["batch", long, p, "--out", tmp_path / "o.jsonl", "--dry-run", "--map", "Q7=q07"]).exit_code == 0


def test_gradebook_refuses_results_without_candidates_and_leaves_out_unknown_questions(tmp_path, cli):
    # long-file results: no candidate field; summing them would add up different people's scores
    recs = [{**_rec(None, "q24", f"long.jsonl:{i}", score=50.0, band="adequate"), "id": f"a{i}"} for i in range(1, 5)]
    p = tmp_path / "r.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    target = tmp_path / "gb.csv"
    res = cli(["report", p, "--format", "gradebook", "--out", target])
    assert res.exit_code == 2 and not target.exists()
    line = res.stderr.strip()
    assert "\n" not in line and "4 of 4 answers have no candidate" in line
    assert "`candidate` field" in line and "wide export" in line
    with pytest.raises(UsageError, match="no candidate"):
        write_gradebook(p)
    # an id that is not a question of the bank gets no column, and a warning says so
    recs = [_rec("ann", "q07", "f.csv:2:2", score=40.0, band="weak"),
            _rec("ann", "q99", "f.csv:2:3", score=90.0, band="strong")]
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    res = cli(["report", p, "--format", "gradebook"])
    assert res.exit_code == 0, res.output
    book = list(csv.DictReader(io.StringIO(res.stdout)))
    assert "q99 score" not in book[0] and book[0]["total"] == "40.0" and book[0]["note"] == ""
    assert "warning: left out of the gradebook, not a question in the bank: 'q99' (1 answer)" in res.stderr
