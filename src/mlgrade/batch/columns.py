"""Which column of a wide export holds what: questions, the candidate, or nothing we grade.

Each column of the header is given one role, in this order:
1. an explicit mapping (`--map "Response 3=q07"`, `--map-file`): the mapping wins; `=-` ignores;
2. the candidate column named with `--candidate-column`;
3. per-question score/feedback columns a quiz adds ("Points - <question>"): ignored;
4. identity columns by header (email, username, name, first + last name, ID);
5. a question id as header (`q07`, `Q7`, `Question 7`);
6. the header's text against the bank's question texts, normalised (case, punctuation,
   whitespace, a trailing "(2 points)", leading numbering "3. "): equal texts match with
   score 100, otherwise the best fuzzy score (rapidfuzz, 0-100) must reach the threshold
   (`DEFAULT_THRESHOLD`), and two questions within `TIE_MARGIN` of each other are refused;
7. known metadata (timestamps, scores, durations): ignored; anything else is unmatched and
   ignored, with a warning when it looks like free-text answers (`--strict`: an error).

Reading the rows is batch/wide.py.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NAME_CHARS, UsageError, quote_name, quote_names
from ..rubrics import RubricBank, normalise_id

DEFAULT_THRESHOLD = 85.0  # fuzzy score (0-100) a header needs to match a question's text
TIE_MARGIN = 1.0  # two questions scoring within this of each other: ambiguous, refused
IGNORE = "-"  # `--map "Comments=-"` ignores a column
LONG_COLUMNS = {"question_id", "answer"}

# identity kinds in order of preference for naming the candidate (stable and unique first)
_IDENTITY = {
    "email": {"email", "email address", "e mail", "e mail address", "your email", "your email address",
              "email id", "student email", "candidate email", "mail"},
    "username": {"username", "user name", "user", "login", "user id", "userid", "login id"},
    "name": {"name", "full name", "your name", "your full name", "student name", "candidate", "candidate name",
             "respondent", "participant", "student", "participant name", "respondent name"},
    "first": {"first name", "firstname", "given name", "forename"},
    "last": {"last name", "lastname", "surname", "family name"},
    "id": {"id", "student id", "candidate id", "respondent id", "response id", "submission id", "student number",
           "id number", "participant id"},
}
_PREFERENCE = ("email", "username", "name", "first+last", "id")
_PER_QUESTION_META = re.compile(r"^\s*(points?|feedback|score|marks?|grade)\s*[-–:]\s+\S", re.IGNORECASE)
_META = re.compile(
    r"^(timestamp|start(ed)?( time| on| date)?|completion time|completed( on| at)?|end time|finished|"
    r"submitted( at| on)?|submission( time| date)?|last modified( time)?|modified|date|time|duration|"
    r"time taken|total( score| points| marks)?|score|points|grade|marks?|feedback|status|state|ip( address)?|"
    r"attempt|language|quiz feedback|posted points|auto score|max score)( \d+( \d+)?)?$")
_QUESTION_ID = re.compile(r"^(?:q|question|question no|question number|#)\s*0*(\d{1,3})$")
_TRAILING_POINTS = re.compile(r"\s*[\(\[]\s*\d+(?:[.,]\d+)?\s*(?:points?|pts?|marks?|p)\.?\s*[\)\]]\s*[*]?\s*$",
                              re.IGNORECASE)
_LEADING_NUMBER = re.compile(r"^\s*(?:(?:q|question)\s*)?\d{1,3}\s*[.):\-–]\s+", re.IGNORECASE)


# a header is matched on its first characters only: question texts are far shorter, and a header
# cell may hold up to MAX_ROW_CHARS (fuzzy matching is quadratic in the lengths it compares)
MAX_MATCH_CHARS = 1000


def normalise_text(text: str) -> str:
    """Header or question text reduced to lower-case words: no punctuation, numbering or points."""
    # whitespace runs collapsed first (linear): the patterns below start with \s*, which is
    # quadratic on a long run when tried at every position (60,000 spaces took 80 s)
    s = unicodedata.normalize("NFKC", re.sub(r"\s+", " ", text)[: 4 * MAX_MATCH_CHARS])
    s = re.sub(r"\s+", " ", s).strip()[:MAX_MATCH_CHARS]
    s = _TRAILING_POINTS.sub("", s)
    s = _LEADING_NUMBER.sub("", s)
    s = re.sub(r"[^\w\s]", " ", s.casefold())
    return re.sub(r"\s+", " ", s).strip()


# --------------------------------------------------------------------------- options


@dataclass
class WideOptions:
    """How to read wide files: explicit column → question mapping, candidate column, strictness."""

    mapping: dict[str, str] = field(default_factory=dict)  # header -> question id, or "-" to ignore
    candidate_column: str | None = None
    threshold: float = DEFAULT_THRESHOLD
    strict: bool = False
    sheet: str | None = None  # XLSX: the sheet to read, by name or number from 1 (default: the first with questions)

    def check(self, bank: RubricBank) -> None:
        """Every mapping target must be a known question (or `-`); fails before anything is read."""
        if not 0 < self.threshold <= 100:
            raise UsageError(f"--match-threshold must be in (0, 100] (got {self.threshold:g})")
        for header, target in self.mapping.items():
            if target != IGNORE and normalise_id(target) not in bank.rubrics:
                import difflib

                near = difflib.get_close_matches(normalise_id(target), list(bank.rubrics), n=3, cutoff=0.5)
                hint = f" Did you mean: {', '.join(near)}?" if near else ""
                raise UsageError(f"--map {quote_name(header)}={quote_name(target)}: unknown question id "
                                 f"{quote_name(target)}.{hint} "
                                 "(see `mlgrade questions list`)")


def map_example(header: str, target: str) -> str:
    """`--map "Response 3=q07"` to paste into a command, or `--map "COLUMN=q07"` for a header too long
    or too odd (quotes, control characters) to type."""
    name = header.strip()
    plain = 0 < len(name) <= NAME_CHARS and name.isprintable() and '"' not in name
    return f'--map "{name if plain else "COLUMN"}={target}"'


def parse_map_args(pairs: list[str] | None) -> dict[str, str]:
    """`["Response 3=q07", "Comments=-"]` → {"Response 3": "q07", "Comments": "-"}."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        header, sep, target = pair.rpartition("=")
        if not sep or not header.strip() or not target.strip():
            raise UsageError(f"--map {quote_name(pair)}: expected COLUMN=QUESTION_ID, e.g. --map \"Response 3=q07\"")
        out[header.strip()] = target.strip()
    return out


def load_map_file(path: str | Path) -> dict[str, str]:
    """A YAML mapping of column header → question id (`-` ignores the column)."""
    import yaml

    from ..textfiles import load_yaml

    p = Path(path)
    try:
        data = load_yaml(p.read_text(encoding="utf-8"))  # aliases refused, never expanded (an alias bomb)
    except FileNotFoundError:
        raise UsageError(f"{p}: no such mapping file") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"{p}: not a readable YAML mapping ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, Mapping) or not data:
        raise UsageError(f"{p}: expected a YAML mapping of column header to question id, e.g. 'Response 3: q07'")
    out = {}
    for key, value in data.items():
        if not isinstance(key, (str, int)) or not isinstance(value, (str, int)) or isinstance(value, bool):
            raise UsageError(f"{p}: {quote_name(key)}: expected 'column header: question id', got {quote_name(value)}")
        out[str(key).strip()] = str(value).strip()
    return out


# --------------------------------------------------------------------------- the mapping


@dataclass
class Column:
    index: int  # 0-based position in the header
    header: str
    role: str  # question | identity | ignored | unmatched
    question_id: str | None = None
    how: str = ""  # map | id | text | fuzzy (question); email, name… (identity); meta, map (ignored)
    score: float | None = None  # match score 0-100 for text matches
    answers: int = 0  # non-empty cells (after inspect)
    empty: int = 0
    chars: int = 0
    wordy: int = 0  # cells of five words or more

    @property
    def looks_like_answers(self) -> bool:
        header = self.header.strip()
        question_like = header.endswith("?") or len(normalise_text(header).split()) >= 6
        free_text = self.answers > 0 and self.chars / self.answers >= 40 and self.wordy * 2 >= self.answers
        return question_like or free_text


@dataclass
class WideMapping:
    path: str
    columns: list[Column]
    candidate_columns: list[int]  # one column, or first + last name; empty: rows are numbered
    candidate_how: str = ""
    rows: int = 0
    answers: int = 0
    empty: int = 0
    bad_rows: int = 0
    duplicate_candidates: int = 0
    warnings: list[str] = field(default_factory=list)
    sheet: str = ""  # XLSX with several sheets: the one read

    @property
    def questions(self) -> list[Column]:
        return [c for c in self.columns if c.role == "question"]

    @property
    def ignored(self) -> list[Column]:
        return [c for c in self.columns if c.role in ("ignored", "unmatched")]

    @property
    def candidate_label(self) -> str:
        return " + ".join(self.columns[i].header for i in self.candidate_columns) or "(row number)"

    def candidate(self, cells: list[str], line: int) -> str:
        name = " ".join(cells[i].strip() for i in self.candidate_columns if cells[i].strip())
        return name or f"row-{line}"

    def to_dict(self) -> dict[str, Any]:
        def col(c: Column) -> dict[str, Any]:
            d = {k: v for k, v in asdict(c).items() if k not in ("chars", "wordy")}
            d["column"] = d.pop("index") + 1
            return d

        return {"path": self.path, "format": "wide", "sheet": self.sheet or None, "rows": self.rows, "answers": self.answers, "empty": self.empty,
                "bad_rows": self.bad_rows, "candidate": {"columns": [self.columns[i].header for i in self.candidate_columns],
                                                         "how": self.candidate_how},
                "duplicate_candidates": self.duplicate_candidates,
                "questions": [col(c) for c in self.questions], "ignored": [col(c) for c in self.ignored],
                "identity": [col(c) for c in self.columns if c.role == "identity"], "warnings": self.warnings}


def _identity_kind(norm: str) -> str | None:
    return next((kind for kind, names in _IDENTITY.items() if norm in names), None)


_COLUMN_NUMBER = re.compile(r"#(\d{1,5})$")


def _find_header(header: list[str], name: str) -> int | None:
    """The column named `name` (exactly, else by its normalised text) or numbered `#N` from 1.
    Two columns under the same name are a UsageError saying how to name one by number."""
    exact = [i for i, h in enumerate(header) if h == name.strip()]
    if len(exact) > 1:
        raise UsageError(f"columns {' and '.join(str(i + 1) for i in exact[:3])} share the header {quote_name(name)}: "
                         f"name one by its number, e.g. \"#{exact[1] + 1}\"")
    if exact:
        return exact[0]
    number = _COLUMN_NUMBER.match(name.strip())
    if number and 1 <= int(number.group(1)) <= len(header):
        return int(number.group(1)) - 1
    loose = [i for i, h in enumerate(header) if normalise_text(h) == normalise_text(name)]
    return loose[0] if len(loose) == 1 else None


def _text_match(norm: str, questions: list[tuple[str, str]], threshold: float, header: str) -> tuple[str, str, float] | None:
    """(question id, how, score) of the question whose text the header carries, or None."""
    from rapidfuzz import fuzz

    if not norm:
        return None
    exact = [qid for qid, q in questions if q == norm]
    if len(exact) > 1:
        raise UsageError(f"column {quote_name(header)} matches {' and '.join(exact)} equally (score 100): "
                         f"say which with {map_example(header, exact[0])} (or ={exact[1]})")
    if exact:
        return exact[0], "text", 100.0
    if len(norm) < 12:  # too short to tell questions apart by spelling
        return None
    scored = sorted(((max(fuzz.ratio(norm, q), fuzz.token_sort_ratio(norm, q)), qid) for qid, q in questions),
                    reverse=True)
    best, qid = scored[0]
    if best < threshold:
        return None
    if len(scored) > 1 and scored[1][0] >= best - TIE_MARGIN:
        raise UsageError(f"column {quote_name(header)} matches {qid} ({best:.1f}) and {scored[1][1]} "
                         f"({scored[1][0]:.1f}) equally: say which with {map_example(header, qid)} (or ={scored[1][1]})")
    return qid, "fuzzy", round(best, 1)


def _question_of(header: str, bank: RubricBank, threshold: float) -> str | None:
    """The question a column header would be matched to (steps 5-6), or None."""
    norm = normalise_text(header)
    m = _QUESTION_ID.match(norm)
    if m and f"q{int(m.group(1)):02d}" in bank.rubrics:
        return f"q{int(m.group(1)):02d}"
    if header.strip().lower() in bank.rubrics:
        return header.strip().lower()
    try:
        hit = _text_match(norm, [(r.id, normalise_text(r.question)) for r in bank], threshold, header)
    except UsageError:
        return "more than one question"
    return hit[0] if hit else None


def _shared_headers(cols: list[Column]) -> list[str]:
    """A warning for each header text that names more than one column: --map by name reaches only
    one of them, so say how to reach the others."""
    by_name: dict[str, list[Column]] = {}
    for c in cols:
        if c.header.strip():
            by_name.setdefault(c.header.strip(), []).append(c)
    out = []
    for name, same in by_name.items():
        if len(same) > 1:
            roles = ", ".join(f"{c.index + 1} ({c.question_id or c.role})" for c in same[:5])
            out.append(f"columns {roles} share the header {quote_name(name)}: map one by its number, "
                       f"e.g. --map \"#{same[1].index + 1}=qNN\" (or =- to ignore it)")
    return out


def plan_columns(header: list[str], bank: RubricBank, options: WideOptions | None = None,
                 path: str = "<input>") -> WideMapping:
    """Give every column a role (see the module docstring). Raises UsageError when the mapping
    is unusable: a --map column not in the header, an ambiguous match, two columns for one question."""
    opts = options or WideOptions()
    opts.check(bank)
    cols = [Column(i, h, "unmatched") for i, h in enumerate(header)]
    mapped: set[int] = set()
    for name, target in opts.mapping.items():
        try:
            i = _find_header(header, name)
        except UsageError as exc:
            raise UsageError(f"{path}: --map {quote_name(name)}: {exc}") from None
        if i is None:
            raise UsageError(f"{path}: --map names column {quote_name(name)}, which is not in the header "
                             f"(columns: {quote_names(header)})")
        c = cols[i]
        if target == IGNORE:
            c.role, c.how = "ignored", "map"
        else:
            c.role, c.question_id, c.how, c.score = "question", normalise_id(target), "map", None
        mapped.add(i)

    candidate_idx: list[int] = []
    candidate_how = ""
    if opts.candidate_column:
        try:
            i = _find_header(header, opts.candidate_column)
        except UsageError as exc:
            raise UsageError(f"{path}: --candidate-column {quote_name(opts.candidate_column)}: {exc}") from None
        if i is None:
            raise UsageError(f"{path}: --candidate-column {quote_name(opts.candidate_column)} is not in the header "
                             f"(columns: {quote_names(header)})")
        if i in mapped and cols[i].role == "question":
            raise UsageError(f"{path}: column {quote_name(header[i])} is both mapped to a question and the candidate column")
        qid = None if i in mapped else _question_of(header[i], bank, opts.threshold)
        if qid is not None:
            raise UsageError(f"{path}: --candidate-column {quote_name(opts.candidate_column)} is the answer column of "
                             f"{qid}, not candidate names: name an identity column (email, name, ID), or add "
                             f"{map_example(header[i], IGNORE)} if it really names the candidates")
        cols[i].role, cols[i].how = "identity", "--candidate-column"
        candidate_idx, candidate_how = [i], "--candidate-column"
        mapped.add(i)

    questions = [(r.id, normalise_text(r.question)) for r in bank]
    kinds: dict[str, list[int]] = {}
    for c in cols:
        if c.index in mapped:
            continue
        norm = normalise_text(c.header)
        if _PER_QUESTION_META.match(c.header):
            c.role, c.how = "ignored", "meta"
            continue
        kind = _identity_kind(norm)
        if kind:
            c.role, c.how = "identity", kind
            kinds.setdefault(kind, []).append(c.index)
            continue
        m = _QUESTION_ID.match(norm)
        if m and f"q{int(m.group(1)):02d}" in bank.rubrics:
            c.role, c.question_id, c.how, c.score = "question", f"q{int(m.group(1)):02d}", "id", None
            continue
        if c.header.strip().lower() in bank.rubrics:
            c.role, c.question_id, c.how = "question", c.header.strip().lower(), "id"
            continue
        try:
            hit = _text_match(norm, questions, opts.threshold, c.header)
        except UsageError as exc:
            raise UsageError(f"{path}: {exc}") from None
        if hit:
            c.role, (c.question_id, c.how, c.score) = "question", hit
            continue
        if _META.match(norm):
            c.role, c.how = "ignored", "meta"

    if not candidate_idx:
        for kind in _PREFERENCE:
            if kind == "first+last":
                if kinds.get("first") and kinds.get("last"):
                    candidate_idx, candidate_how = [kinds["first"][0], kinds["last"][0]], "first + last name"
                    break
            elif kinds.get(kind):
                candidate_idx, candidate_how = [kinds[kind][0]], kind
                break

    by_question: dict[str, Column] = {}
    for c in cols:
        if c.role != "question":
            continue
        other = by_question.get(c.question_id)  # type: ignore[arg-type]
        if other is not None:
            raise UsageError(f"{path}: columns {quote_name(other.header)} and {quote_name(c.header)} both match "
                             f"{c.question_id}: say which with --map (e.g. {map_example(c.header, IGNORE)} to ignore one)")
        by_question[c.question_id] = c  # type: ignore[index]
    mapping = WideMapping(path, cols, candidate_idx, candidate_how)
    if not by_question:
        raise UsageError(f"{path}: header lacks column(s) question_id, answer, and no column matches a question "
                         f"(columns: {quote_names(header)}): name them with --map \"COLUMN=q07\"")
    mapping.warnings += _shared_headers(cols)
    if not candidate_idx:
        mapping.warnings.append("no identity column (email, name, username, ID): candidates are named by row "
                                "(row-2, row-3 …); name one with --candidate-column")
    return mapping
