"""A folder of hostile batch inputs (issue 12), shared by the end-to-end test and
benchmarks/hostile_batch.py. `make_hostile` returns the `source` of every input row, each of
which must appear exactly once in the results, as graded or skipped."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

GOOD = "Overfitting is when a model memorises noise in the training data and so fails to generalise to new data."


def bomb_item(levels: int) -> str:
    """One YAML list item whose answer, if aliases were expanded, holds 9**levels strings."""
    text = '- id: bomb\n  question_id: q05\n  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for name in "bcdefghijklm"[: levels - 1]:
        text += f"  {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = name
    return text + f"  answer: *{prev}\n"


def make_hostile(root: Path, *, benign: bool = False, bomb_levels: int = 9, huge_answer_mb: int = 0) -> list[str]:
    """Write the hostile inputs under `root` (or, with `benign`, the same number of ordinary rows
    in the same files: the baseline). Returns the input paths to pass to `mlgrade batch` first,
    then the expected sources: [inputs..., "--", sources...]."""
    root.mkdir(parents=True, exist_ok=True)
    sources: list[str] = []

    folder = root / "answers"
    folder.mkdir()
    (folder / "q05-alice.md").write_text(GOOD)
    sources.append(str(folder / "q05-alice.md"))
    specials = ["loop1.md", "loop2.md", "q05-dangling.md", "q05-fifo.md", "q05-dev.md", "q05-dir.md", "q05-latin1.md"]
    if benign:
        for name in specials:
            (folder / name.replace("loop", "q05-loop")).write_text(GOOD + f" ({name})")
            sources.append(str(folder / name.replace("loop", "q05-loop")))
    else:
        os.symlink("loop2.md", folder / "loop1.md")
        os.symlink("loop1.md", folder / "loop2.md")
        os.symlink("missing.md", folder / "q05-dangling.md")
        os.mkfifo(folder / "q05-fifo.md")
        try:
            os.mknod(folder / "q05-dev.md", 0o600 | 0o020000, os.makedev(1, 5))  # like /dev/zero
        except OSError:
            os.symlink("/dev/zero", folder / "q05-dev.md")
        (folder / "q05-dir.md").mkdir()
        (folder / "q05-latin1.md").write_bytes("Sur-apprentissage: le modèle mémorise".encode("latin-1"))
        sources += [str(folder / name) for name in specials]

    jsonl = root / "answers.jsonl"
    with jsonl.open("wb") as fh:
        fh.write(json.dumps({"id": "j1", "question_id": "q05", "answer": GOOD}).encode() + b"\n")
        if benign:
            fh.write(json.dumps({"id": "j2", "question_id": "q05", "answer": GOOD + " two"}).encode() + b"\n")
            fh.write(json.dumps({"id": "j3", "question_id": "q05", "answer": GOOD + " three"}).encode() + b"\n")
        else:
            fh.write(b"[" * 100_000 + b"]" * 100_000 + b"\n")
            fh.write(b'{"id": "j3", "question_id": "q05", "answer": "noise \xff\xfe memorised by the model"}\n')
        fh.write(json.dumps({"id": "j4", "question_id": "q05", "answer": GOOD + " four"}).encode() + b"\n")
        if huge_answer_mb and benign:
            fh.write(json.dumps({"id": "j5", "question_id": "q05", "answer": GOOD + " more"}).encode() + b"\n")
        elif huge_answer_mb:  # written in pieces: a 50 MB string here would inflate the measured child's peak
            fh.write(b'{"id": "j5", "question_id": "q05", "answer": "')
            for _ in range(huge_answer_mb):
                fh.write(b"x" * (1 << 20))
            fh.write(b'"}\n')
    lines = 5 if huge_answer_mb else 4
    sources += [f"{jsonl}:{i}" for i in range(1, lines + 1)]

    table = root / "answers.csv"
    with table.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "question_id", "answer", "candidate"])
        w.writerow(["c1", "q05", GOOD, "=HYPERLINK(\"http://evil\",\"x\")"])
        w.writerow(["c2", "q05", GOOD + " two" if benign else "word\n" * 30_000, "bob"])
        w.writerow(["c3", "q05", GOOD + " three", "@SUM(A1)"])
    sources += [f"{table}:2", f"{table}:3", f"{table}:{4 if benign else 30_004}"]

    yaml_file = root / "answers.yaml"
    first = f"- id: y1\n  question_id: q05\n  answer: {json.dumps(GOOD)}\n"
    middle = (f"- id: bomb\n  question_id: q05\n  answer: {json.dumps(GOOD + ' bomb')}\n" if benign
              else bomb_item(bomb_levels))
    last = f"- id: y3\n  question_id: q05\n  answer: {json.dumps(GOOD + ' three')}\n"
    yaml_file.write_text(first + middle + last)
    sources += [f"{yaml_file}:1", f"{yaml_file}:4", f"{yaml_file}:{4 + middle.count(chr(10))}"]
    return [str(folder), str(jsonl), str(table), str(yaml_file), "--", *sources]
