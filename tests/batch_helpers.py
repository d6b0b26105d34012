"""Test-only graders for the batch engine: latency, in-flight counting, scripted failures."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

from mlgrade.errors import GraderFailure
from mlgrade.graders.fake import FakeGrader


@dataclass
class RetryEvent:
    kind: str
    wait_s: float | None = None


@dataclass
class SlowGrader(FakeGrader):
    """A FakeGrader that takes `latency` seconds and counts how many calls overlap."""

    latency: float = 0.01
    in_flight: int = 0
    peak: int = 0
    fail_answers: set[str] = field(default_factory=set)
    on_retry: object = None
    rate_limit_first: int = 0  # the first N calls report a 429 (through on_retry) before succeeding

    async def assess(self, rubric, answer, *, facts=None):
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.rate_limit_first > 0:
                self.rate_limit_first -= 1
                if self.on_retry is not None:
                    self.on_retry(RetryEvent("rate_limit", 0.05))
                await asyncio.sleep(0.05)
            await asyncio.sleep(self.latency)
            if answer in self.fail_answers:
                raise GraderFailure("reply failed validation", raw_reply="{bad", attempts=3)
            return await super().assess(rubric, answer, facts=facts)
        finally:
            self.in_flight -= 1


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_out(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def answers(n: int, qids: tuple[str, ...] = ("q01", "q07", "q05")) -> list[dict]:
    return [{"id": f"a{i:05d}", "question_id": qids[i % len(qids)], "answer": f"Answer number {i}. It is fine.",
             "candidate": f"c{i % 4}"} for i in range(n)]


def write_xlsx_shared_strings(path: Path, rows) -> Path:
    """A minimal XLSX whose text lives in a shared-strings table, as Excel and form exports write
    it (openpyxl itself writes inline strings, which would not exercise that part of a reader)."""
    import zipfile
    from xml.sax.saxutils import escape

    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    index: dict[str, int] = {}
    rows = list(rows)
    width = max(len(r) for r in rows)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{ct}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{ct}.sharedStrings+xml"/></Types>'))
        z.writestr("_rels/.rels", f'<Relationships xmlns="{pkg}"><Relationship Id="rId1" '
                   f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
                   '<sheet name="Form1" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{pkg}">'
                   f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
                   f'<Relationship Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
        with z.open("xl/worksheets/sheet1.xml", "w") as fh:
            fh.write(f'<worksheet xmlns="{main}"><dimension ref="A1:{chr(64 + width)}{len(rows)}"/><sheetData>'.encode())
            for r, row in enumerate(rows, start=1):
                cells = []
                for c, value in enumerate(row):
                    ref = f"{chr(65 + c)}{r}"
                    if isinstance(value, (int, float)):
                        cells.append(f'<c r="{ref}"><v>{value}</v></c>')
                    elif value:
                        i = index.setdefault(value, len(index))
                        cells.append(f'<c r="{ref}" t="s"><v>{i}</v></c>')
                fh.write(f'<row r="{r}">{"".join(cells)}</row>'.encode())
            fh.write(b"</sheetData></worksheet>")
        with z.open("xl/sharedStrings.xml", "w") as fh:
            fh.write(f'<sst xmlns="{main}" count="{len(index)}" uniqueCount="{len(index)}">'.encode())
            for text in index:
                fh.write(f'<si><t xml:space="preserve">{escape(text)}</t></si>'.encode())
            fh.write(b"</sst>")
    return path
