"""Human-graded CSVs of the kind `mlgrade eval` reads, written for tests."""

from __future__ import annotations

import csv
from pathlib import Path

SCORED_HEADER = ("question", "reference_answer", "student_answer", "score")
REFERENCE = "A location in memory that stores a value."


def write_csv(path: Path, rows, header=SCORED_HEADER) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def memory_scores(path: Path, scored: tuple[tuple[str, str], ...] = (
        ("A location in memory storing a value.", "5"), ("A loop.", "1"), ("A value in memory.", "3"))) -> Path:
    """Answers to "what is a variable" scored 0-5 against one reference answer."""
    return write_csv(path, [("q", REFERENCE, answer, score) for answer, score in scored])
