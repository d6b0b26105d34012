"""Hostile spreadsheets (issue 27): each file ends as skipped rows or one clear line, in bounded
time and memory. The hangs and blow-ups run in a child process under CPU-time and address-space
caps, so code that hangs or inflates fails the test instead of stalling or starving CI."""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import hostile_sheets as hs
import pytest

from mlgrade.batch.columns import WideOptions, normalise_text, plan_columns
from mlgrade.batch.inputs import iter_items
from mlgrade.batch.wide import inspect_wide
from mlgrade.errors import UsageError

import mlgrade

SRC = str(Path(mlgrade.__file__).resolve().parents[1])  # the child runs the same code as this test

# the child reads a wide file like `batch --dry-run` does, then reports its answers and its peak
CHILD = textwrap.dedent("""
    import json, re, sys
    from pathlib import Path
    from mlgrade.batch.inputs import iter_items
    from mlgrade.batch.wide import inspect_wide
    from mlgrade.rubrics import load_rubrics
    from mlgrade.errors import UsageError
    bank = load_rubrics()
    try:
        m = inspect_wide(Path(sys.argv[1]), bank)
        items = [(i.source.rsplit(":", 1)[-1] if not i.ok else i.candidate, i.skip_reason) for i in iter_items([Path(sys.argv[1])], bank)]
        out = {"rows": m.rows, "bad_rows": m.bad_rows, "items": items}
    except UsageError as exc:
        out = {"error": str(exc)}
    out["peak_mb"] = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
    print(json.dumps(out))
""")


def run_capped(path: Path, cpu_s: int, mem_mb: int = 1500) -> dict:
    """CHILD on `path` with at most `cpu_s` seconds of CPU and `mem_mb` of address space."""

    def caps() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
        resource.setrlimit(resource.RLIMIT_AS, (mem_mb << 20, mem_mb << 20))

    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("MLGRADE_RUBRICS", None)
    res = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, env=env,
                         preexec_fn=caps, timeout=cpu_s * 20)
    assert res.returncode == 0, f"rc {res.returncode} (-24 is the CPU cap): {res.stderr[-1500:]}"
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_h1_a_row_numbered_999_999_999_999_is_one_skipped_row(tmp_path):
    # before: openpyxl yields every missing row; 10**12 of them is days (killed by the CPU cap)
    out = run_capped(hs.row_gap(tmp_path / "gap.xlsx"), cpu_s=30)
    assert out["rows"] == 1 and out["bad_rows"] == 1
    assert out["items"][0] == ["b@x.org", None]
    assert out["items"][1][0] == "999999999999" and "past the last row a sheet can have" in out["items"][1][1]


def test_h2_a_cell_inflating_to_256_mib_is_a_skipped_row_in_bounded_memory(tmp_path):
    # before: the cell's text was built whole (MemoryError under the cap; 2.18 GB for 1 GiB)
    out = run_capped(hs.cell_bomb(tmp_path / "bomb.xlsx", mib=256), cpu_s=120)
    assert out["peak_mb"] < 200
    assert out["rows"] == 1 and out["bad_rows"] == 1
    [(row, reason), good] = out["items"]
    assert row == "2" and "row is over 4,000,000 characters" in reason
    assert good == ["b@x.org", None]  # the row after the bomb is still read


def test_h2_an_oversized_shared_string_skips_only_the_rows_using_it(tmp_path):
    out = run_capped(hs.shared_bomb(tmp_path / "sst.xlsx", count=1, mib=16), cpu_s=60)
    assert out["peak_mb"] < 200
    [(row, reason), good] = out["items"]
    assert row == "2" and "cell B2 is over 4,000,000 characters" in reason
    assert good == ["b@x.org", None]


def test_h2_shared_strings_are_bounded_in_total(tmp_path):
    # before: 2,048 strings of 1 MiB spooled 2 GB to the temp folder; now one line past 256 MB
    out = run_capped(hs.shared_bomb(tmp_path / "sst.xlsx", count=300, mib=1), cpu_s=120)
    assert out["peak_mb"] < 200
    assert out["error"].endswith("unreadable Excel workbook: its shared strings hold over 256 MB of text")


def test_m8_a_forged_dimension_does_not_pad_rows(tmp_path):
    # before: each of the 20,000 rows padded to 16,384 cells (about 74 s of CPU, over the cap)
    out = run_capped(hs.wide_dimension(tmp_path / "dim.xlsx", rows=20_000), cpu_s=30)
    assert out["rows"] == 20_000 and out["bad_rows"] == 0


def test_h4_a_header_cell_of_60000_spaces_is_read_in_linear_time(tmp_path):
    # before: the trailing-points pattern was quadratic on the run (80 s; over the cap)
    p = tmp_path / "spaces.csv"
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Email", "q05", "Note" + " " * 60_000 + "end", "Other" + " " * 200_000 + "(2 points)"])
        w.writerow(["a@x.org", "scaling matters for kNN", "x", "y"])
    out = run_capped(p, cpu_s=30)
    assert out["rows"] == 1 and out["items"] == [["a@x.org", None]]


def test_header_text_is_clipped_and_whitespace_collapsed_before_matching():
    assert normalise_text("Note" + " " * 60_000 + "end") == "note end"
    assert normalise_text("Q3.  What is   bagging?\t(2 points) ") == "what is bagging"
    assert len(normalise_text("word " * 1_000_000)) <= 1000


def test_h6_a_damaged_compressed_sheet_is_one_line_naming_the_file(tmp_path, cli):
    bad = hs.damaged(tmp_path / "corrupt.xlsx")
    res = cli(["batch", bad, "--out", tmp_path / "c.jsonl"])
    assert res.exit_code == 2, res.output  # before: zlib.error traceback, rc 1
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.output
    assert res.stderr.startswith(f"error: {bad}: unreadable Excel workbook: the worksheet is damaged (zlib:")


def test_damage_after_the_header_keeps_the_rows_before_it(tmp_path, bank):
    import zipfile

    rows = [hs._row(r, b"s%d@x.org" % r, hs.ANSWER + b" %d" % r) for r in range(2, 3000)]
    good = hs.write_workbook(tmp_path / "good.xlsx", hs.sheet_of(rows))
    info = zipfile.ZipFile(good).getinfo(hs.SHEET)
    data = bytearray(good.read_bytes())
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size * 3 // 4  # deep in the sheet's stream
    for k in range(middle, middle + 20):
        data[k] ^= 0xFF
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(bytes(data))
    items = list(iter_items([bad], bank))
    assert items[0].ok and not items[-1].ok and "unreadable worksheet from this row on" in items[-1].skip_reason
    assert len(items) < 2998


def test_l9_excel_error_values_are_not_answers(tmp_path, bank):
    items = list(iter_items([hs.error_cells(tmp_path / "err.xlsx")], bank))
    assert [(i.candidate, i.skip_reason) for i in items] == [("e2@x.org", "no answer"), ("e3@x.org", "no answer"),
                                                             ("e4@x.org", None)]  # before: '#DIV/0!' graded


def test_a_bad_date_cell_is_shown_as_written_and_later_rows_are_read(tmp_path, bank):
    rows = [b'<row r="2"><c r="A2" t="inlineStr"><is><t>a@x.org</t></is></c><c r="B2" t="d"><v>not-a-date</v></c></row>',
            hs._row(3, b"b@x.org", hs.ANSWER)]
    items = list(iter_items([hs.write_workbook(tmp_path / "d.xlsx", hs.sheet_of(rows))], bank))
    assert [(i.candidate, i.answer) for i in items] == [("a@x.org", "not-a-date"), ("b@x.org", hs.ANSWER.decode())]


def test_a_document_type_declaration_is_refused(tmp_path, cli):
    sheet = (b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY e "lol">]>'
             + hs.sheet_of([hs._row(2, b"a@x.org", b"&e;")]))
    p = hs.write_workbook(tmp_path / "dtd.xlsx", sheet)
    res = cli(["batch", p, "--out", tmp_path / "o.jsonl", "--dry-run"])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "document type declaration" in res.stderr


def test_rows_and_cells_without_references_follow_the_previous_ones(tmp_path, bank):
    rows = [b'<row><c t="inlineStr"><is><t>a@x.org</t></is></c><c t="inlineStr"><is><r><t>Scal</t></r><r><t>ing'
            b'</t></r><rPh><t>IGNORED</t></rPh></is></c></row>',
            b'<row r="7"><c r="B7"><v>3.0</v></c><c r="A7" t="b"><v>1</v></c></row>']
    items = list(iter_items([hs.write_workbook(tmp_path / "n.xlsx", hs.sheet_of(rows))], bank))
    assert [(i.candidate, i.answer, i.source.rsplit(":", 2)[-2]) for i in items] == [
        ("a@x.org", "Scaling", "2"), ("TRUE", "3", "7")]


def test_m7_inspecting_many_unique_columns_holds_a_bounded_number_of_values(tmp_path, bank, monkeypatch):
    import tracemalloc

    from mlgrade.batch import wide

    p = tmp_path / "wide.csv"
    cols, rows = 1000, 300
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Name", "q05", *[f"Extra {c}" for c in range(cols)]])
        for r in range(rows):
            w.writerow(["Anonymous", f"scaling answer {r}", *[f"r{r}c{c}" for c in range(cols)]])
    monkeypatch.setattr(wide, "MAX_TRACKED_VALUES", 10_000, raising=False)
    tracemalloc.start()
    try:
        m = inspect_wide(p, bank)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak / 2**20:.1f} MB"  # before: a set of 300,000 hashes (about 30 MB)
    # the most preferred unique column is still found: 'Name' repeats, 'Extra 0' names the rows
    assert m.candidate_label == "Extra 0"


def test_l2_columns_sharing_a_header_are_warned_about_and_addressable_by_number(bank):
    m = plan_columns(["Email", "Answer 1", "Answer 1"], bank, WideOptions(mapping={"#3": "q05"}))
    assert [(c.index, c.question_id) for c in m.questions] == [(2, "q05")]
    assert any("share the header 'Answer 1'" in w and '--map "#3=qNN"' in w for w in m.warnings)
    with pytest.raises(UsageError, match=r"columns 2 and 3 share the header 'Answer 1': name one by its number, e.g. \"#3\""):
        plan_columns(["Email", "Answer 1", "Answer 1"], bank, WideOptions(mapping={"Answer 1": "q05"}))


@pytest.mark.parametrize("suffix,kind", [(".xls", "old Excel (.xls)"), (".ods", "OpenDocument (.ods)")])
def test_xls_and_ods_are_refused_with_how_to_convert(tmp_path, cli, suffix, kind):
    p = tmp_path / f"export{suffix}"
    p.write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 100)
    res = cli(["batch", p, "--out", tmp_path / "o.jsonl"])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert f"{kind} files are not read: save it as .xlsx or .csv" in res.stderr and "--convert-to xlsx" in res.stderr


def test_an_inflated_structural_part_is_refused_before_it_is_read(tmp_path, cli):
    import zipfile

    good = hs.row_gap(tmp_path / "good.xlsx", number=3)
    bad = tmp_path / "styles.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "xl/styles.xml":  # 40 MB of whitespace inside the root element: well-formed
                data = data.replace(b"</styleSheet>", b" " * (40 << 20) + b"</styleSheet>")
            dst.writestr(name, data)
    res = cli(["batch", bad, "--out", tmp_path / "o.jsonl", "--dry-run"])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.output
    assert "its part xl/styles.xml is 41,94" in res.stderr and "(over 32 MB)" in res.stderr


def test_a_shared_string_index_that_does_not_exist_skips_the_row(tmp_path, bank):
    rows = [b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>s%d@x.org</t></is></c><c r="B%d" t="s"><v>%s</v></c></row>'
            % (r, r, r, r, v) for r, v in ((2, b"-1"), (3, b"7"), (4, b"x"), (5, b"0"))]
    p = hs.write_workbook(tmp_path / "i.xlsx", hs.sheet_of(rows), lambda fh: fh.write(
        b"<sst " + hs.NS + b"><si><t>" + hs.ANSWER + b"</t></si></sst>"))
    items = list(iter_items([p], bank))
    assert [i.skip_reason and i.skip_reason.split(",")[0] for i in items] == [
        "cell B2 names shared string '-1'", "cell B3 names shared string '7'", "cell B4 names shared string 'x'", None]
    assert items[-1].answer == hs.ANSWER.decode()


def test_a_dry_run_names_at_most_30_ignored_columns(tmp_path, cli):
    p = tmp_path / "w.csv"
    p.write_text("Email,q05," + ",".join(f"Col {c}" for c in range(500)) + "\na@x.org,scaling," + "x," * 499 + "x\n")
    res = cli(["batch", p, "--out", tmp_path / "o.jsonl", "--dry-run"])
    [line] = [ln for ln in res.stdout.splitlines() if ln.startswith("  ignored: ")]
    assert "'Col 29' (no match) … and 470 more (--json lists them)" in line and "'Col 30'" not in line
