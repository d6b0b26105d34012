"""Peak memory of one `mlgrade batch` run over every hostile input of issue 12 at once (goal: under
200 MB), as a ratio against a baseline run over the same files with ordinary rows in place of the
hostile ones, measured in the same invocation.

The hostile set: a symlink loop, a dangling link, a FIFO, a device, a directory named x.md and a
Latin-1 file in an answer folder; a JSONL line nested 100,000 deep, a line with invalid UTF-8 and
(with --huge-mb) a multi-megabyte answer; a CSV field of 150,000 characters spread over 30,000
lines; a YAML "billion laughs" item (9**9 strings if expanded). Each run is a fresh process with
the offline grader; peak RSS is the child's VmHWM. Every input row must come out exactly once.

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

from hostile_helpers import make_hostile  # noqa: E402

LIMIT_MB = 200

# VmHWM, not ru_maxrss: Linux carries the parent's high-water mark into ru_maxrss across exec
CHILD = ("import json,re,sys,time;from mlgrade.cli import app;t=time.perf_counter()\n"
         "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    code=e.code\n"
         "hwm=int(re.search(r'VmHWM:\\s+(\\d+)',open('/proc/self/status').read()).group(1))\n"
         "print(json.dumps({'rc':code,'peak_mb':hwm/1024,'wall_s':time.perf_counter()-t}),file=sys.stderr)")


def run(root: Path, *, benign: bool, huge_mb: int) -> dict:
    spec = make_hostile(root, benign=benign, huge_answer_mb=huge_mb)
    inputs, sources = spec[: spec.index("--")], spec[spec.index("--") + 1:]
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
    if not hostile["once"] or hostile["traceback"] or hostile["peak_mb"] >= LIMIT_MB:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
