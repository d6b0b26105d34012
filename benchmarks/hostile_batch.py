"""Peak memory of one `mlgrade batch` run over every hostile input of issue 12 at once (goal: under
200 MB), as a ratio against a baseline run over the same files with ordinary rows in place of the
hostile ones, measured in the same invocation.

The hostile set: a symlink loop, a dangling link, a FIFO, a device, a directory named x.md and a
Latin-1 file in an answer folder; a JSONL line nested 100,000 deep, a line with invalid UTF-8 and
(with --huge-mb) a multi-megabyte answer; a CSV field of 150,000 characters spread over 30,000
lines; a YAML "billion laughs" item (9**9 strings if expanded); and the spreadsheets of issue 27:
an XLSX row numbered 999,999,999,999, an answer cell inflating to 1 GiB (a 1 MB file), a forged
16,384-column dimension and Excel error cells. Each run is a fresh process with the offline
grader; peak RSS is the child's VmHWM. Every input row must come out exactly once.

Workbooks that must be refused whole (a damaged deflate stream, one shared string of 1 GiB,
2,048 shared strings of 1 MiB) are each run on their own: one line, exit 2, the same peak limit.

    python benchmarks/hostile_batch.py [--huge-mb 50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import hostile_sheets as hs  # noqa: E402
from hostile_helpers import make_hostile  # noqa: E402

LIMIT_MB = 200

# VmHWM, not ru_maxrss: Linux carries the parent's high-water mark into ru_maxrss across exec
CHILD = ("import json,re,sys,time;from mlgrade.cli import app;t=time.perf_counter()\n"
         "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    code=e.code\n"
         "hwm=int(re.search(r'VmHWM:\\s+(\\d+)',open('/proc/self/status').read()).group(1))\n"
         "print(json.dumps({'rc':code,'peak_mb':hwm/1024,'wall_s':time.perf_counter()-t}),file=sys.stderr)")


def make_sheets(root: Path, *, benign: bool) -> tuple[list[str], list[str]]:
    """The row-level spreadsheet cases (or, benign, the same shapes with ordinary rows): their
    paths and the source of every answer they hold."""
    def ok(name: str) -> bytes:  # emails unique across files: a repeated candidate would be a skipped duplicate
        return hs.sheet_of([hs._row(r, b"%s-%d@x.org" % (name.encode(), r), hs.ANSWER) for r in (2, 3)])

    if benign:
        files = {name: hs.write_workbook(root / name, ok(name)) for name in ("gap.xlsx", "bomb.xlsx", "err.xlsx")}
        files["dim.xlsx"] = hs.write_workbook(root / "dim.xlsx", hs.sheet_of(
            [hs._row(r, b"s%d@x.org" % r, hs.ANSWER) for r in range(2, 2002)]))
        sources = [f"{files[n]}:{r}:2" for n in ("gap.xlsx", "bomb.xlsx", "err.xlsx") for r in (2, 3)]
    else:
        files = {"gap.xlsx": hs.row_gap(root / "gap.xlsx"), "bomb.xlsx": hs.cell_bomb(root / "bomb.xlsx", mib=1024),
                 "err.xlsx": hs.error_cells(root / "err.xlsx"), "dim.xlsx": hs.wide_dimension(root / "dim.xlsx", 2000)}
        sources = [f"{files['gap.xlsx']}:2:2", f"{files['gap.xlsx']}:999999999999",
                   f"{files['bomb.xlsx']}:2", f"{files['bomb.xlsx']}:3",  # the rest past 512 MB of XML is unread
                   *(f"{files['err.xlsx']}:{r}:2" for r in (2, 3, 4))]
    sources += [f"{files['dim.xlsx']}:{r}:2" for r in range(2, 2002)]
    return [str(p) for p in files.values()], sources


def refused(root: Path) -> list[dict]:
    """Each whole-workbook refusal on its own: rc, lines printed, peak."""
    root.mkdir(parents=True)
    cases = {"damaged deflate stream": hs.damaged(root / "corrupt.xlsx"),
             "one 1 GiB shared string": hs.shared_bomb(root / "sst1g.xlsx", count=1, mib=1024),
             "2,048 shared strings of 1 MiB": hs.shared_bomb(root / "sst2k.xlsx", count=2048, mib=1)}
    out = []
    for label, path in cases.items():
        env = {**os.environ, "MLGRADE_HOME": str(root / "home"), "MLGRADE_GRADER": "offline"}
        res = subprocess.run([sys.executable, "-c", CHILD, "batch", str(path), "--out", str(root / "r.jsonl")],
                             capture_output=True, text=True, env=env, timeout=600)
        lines = res.stderr.strip().splitlines()
        stats = json.loads(lines[-1])
        stats.update(label=label, said=lines[:-1], traceback="Traceback" in res.stderr)
        out.append(stats)
    return out


def run(root: Path, *, benign: bool, huge_mb: int) -> dict:
    spec = make_hostile(root, benign=benign, huge_answer_mb=huge_mb)
    inputs, sources = spec[: spec.index("--")], spec[spec.index("--") + 1:]
    sheets, sheet_sources = make_sheets(root, benign=benign)
    inputs, sources = inputs + sheets, sources + sheet_sources
    out = root / "results.jsonl"
    env = {**os.environ, "MLGRADE_HOME": str(root / "home"), "MLGRADE_GRADER": "offline"}
    res = subprocess.run([sys.executable, "-c", CHILD, "batch", *inputs, "--out", str(out)], capture_output=True,
                         text=True, env=env, timeout=600)
    stats = json.loads(res.stderr.strip().splitlines()[-1])
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    seen = Counter(r["source"] for r in rows)
    stats.update(rows=len(rows), expected=len(sources), once=sorted(seen) == sorted(sources) and set(seen.values()) == {1},
                 skipped=sum(r["outcome"] == "skipped" for r in rows), traceback="Traceback" in res.stderr)
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--huge-mb", type=int, default=0, help="add a JSONL answer of this many MB to both runs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlgrade-hostile-") as tmp:
        started = time.perf_counter()
        base = run(Path(tmp) / "baseline", benign=True, huge_mb=args.huge_mb)
        hostile = run(Path(tmp) / "hostile", benign=False, huge_mb=args.huge_mb)
        whole = refused(Path(tmp) / "refused")
        total = time.perf_counter() - started
    print(f"baseline (ordinary rows): {base['rows']} rows, peak {base['peak_mb']:.1f} MB, {base['wall_s']:.2f} s, "
          f"rc {base['rc']}")
    print(f"hostile inputs:           {hostile['rows']} rows ({hostile['skipped']} skipped), peak "
          f"{hostile['peak_mb']:.1f} MB, {hostile['wall_s']:.2f} s, rc {hostile['rc']}")
    ratio = hostile["peak_mb"] / base["peak_mb"]
    print(f"peak memory ratio hostile/baseline: {ratio:.2f}x; limit {LIMIT_MB} MB: "
          f"{'OK' if hostile['peak_mb'] < LIMIT_MB else 'OVER'}")
    print(f"every row exactly once: {hostile['once']} (expected {hostile['expected']}); traceback: {hostile['traceback']}; "
          f"total {total:.1f} s")
    bad = not hostile["once"] or hostile["traceback"] or hostile["peak_mb"] >= LIMIT_MB
    for r in whole:
        ok = r["rc"] == 2 and len(r["said"]) == 1 and not r["traceback"] and r["peak_mb"] < LIMIT_MB
        bad = bad or not ok
        print(f"refused workbook, {r['label']}: rc {r['rc']}, peak {r['peak_mb']:.1f} MB "
              f"({r['peak_mb'] / base['peak_mb']:.2f}x baseline), {r['wall_s']:.2f} s: {' | '.join(r['said'])[:160]}")
    if bad:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
