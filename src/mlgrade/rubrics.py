"""Load and validate rubrics: the built-in bank shipped in the package, plus the user's own.

A user folder (``MLGRADE_RUBRICS`` or ``--rubrics DIR``) *extends* the built-in bank: its
rubrics are added, and one whose id equals a built-in id replaces that built-in rubric.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import RubricError, UnknownQuestionError, UsageError, quote_name
from .models import SECTIONS, Rubric
from .textfiles import load_yaml

RUBRIC_SUFFIXES = (".yaml", ".yml")
# The writing guide's range (README, "Writing a rubric"). A warning, not an error: rubrics derived
# from a short reference answer (`rubrics derive`, `eval`) can honestly have fewer points.
RECOMMENDED_KEY_POINTS = (4, 8)


def _resource_dir(name: str) -> Path:
    """A data folder shipped in the wheel (force-included), or the repo's top-level folder
    when running from a source checkout / editable install."""
    packaged = resources.files("mlgrade") / name
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / name


def builtin_rubrics_dir() -> Path:
    return _resource_dir("rubrics")


def prompts_dir() -> Path:
    return _resource_dir("prompts")


def _format_loc(loc: tuple[Any, ...], data: Any) -> str:
    """Turn a pydantic error location into a readable field path (key_points[2].weight → key_points[id=x].weight)."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict) and "id" in node[item]:
                label = f"[{node[item]['id']}]"
            parts.append(label)
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(rubric)"


def parse_rubric(data: Any, source: str) -> Rubric:
    """Validate one rubric's data; raise RubricError with one line per problem."""
    from pydantic import ValidationError

    if not isinstance(data, dict):
        raise RubricError([f"{source}: expected a mapping of rubric fields, got {type(data).__name__}"])
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _format_loc(tuple(err["loc"]), data)
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            problems.append(f"{source}: {where}: {msg}")
        raise RubricError(problems) from None


def load_rubric_file(path: Path) -> Rubric:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RubricError([f"{path}: no such file"]) from None
    except UnicodeDecodeError:
        raise RubricError([f"{path}: not valid UTF-8"]) from None
    try:
        data = load_yaml(text)  # aliases refused: a "billion laughs" rubric cannot expand
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RubricError([f"{path}:{where}: malformed YAML: {problem}"]) from None
    return parse_rubric(data, str(path))


def rubric_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in RUBRIC_SUFFIXES and p.is_file())


def load_dir(directory: Path) -> tuple[dict[str, Rubric], list[str]]:
    """Load every rubric in a folder. Returns the valid rubrics and one line per problem."""
    if not directory.is_dir():
        return {}, [f"{directory}: not a directory"]
    found: dict[str, Rubric] = {}
    origin: dict[str, Path] = {}
    problems: list[str] = []
    for path in rubric_files(directory):
        try:
            rubric = load_rubric_file(path)
        except RubricError as exc:
            problems.extend(exc.problems)
            continue
        if rubric.id in found:
            problems.append(f"{path}: id: duplicate question id {quote_name(rubric.id)} (also in {origin[rubric.id].name})")
            continue
        found[rubric.id] = rubric
        origin[rubric.id] = path
    return found, problems


def validate_dir(directory: Path | None = None) -> list[str]:
    """All problems in a rubric folder (the built-in bank by default); empty when all valid."""
    directory = directory or builtin_rubrics_dir()
    rubrics, problems = load_dir(directory)
    if not rubrics and not problems:
        problems.append(f"{directory}: no rubric files (*.yaml) found")
    builtin = directory.resolve() == builtin_rubrics_dir().resolve()
    for rubric in rubrics.values():
        problems += [f"{directory}: {rubric.id}: {p}" for p in follow_up_problems(rubric, builtin=builtin)]
    return problems


def follow_up_problems(rubric: Rubric, *, builtin: bool = False) -> list[str]:
    """What the model cannot check alone: a follow-up key point with no cues (the offline grader
    would judge it by its words only) and duplicate questions; in the built-in bank, a follow-up
    that cannot be graded or that names no key point of the main question it probes."""
    problems = []
    seen: set[str] = set()
    for n, f in enumerate(rubric.follow_ups, 1):
        where = f"follow_ups[{n}]"
        key = " ".join(f.question.split()).casefold()
        if key in seen:
            problems.append(f"{where}: the same question as an earlier follow-up")
        seen.add(key)
        problems += [f"{where}: key point {kp.id!r} has no cues" for kp in f.key_points if not kp.cues]
        problems += [f"{where}: misconception {m.id!r} has no cues" for m in f.misconceptions if not m.cues]
        if builtin and not f.gradable:
            problems.append(f"{where}: no key points, so answers to it cannot be graded")
        if builtin and not f.targets:
            problems.append(f"{where}: no targets (the main key points it probes)")
    return problems


def rubric_warnings(rubrics: Iterable[Rubric], directory: Path | None = None) -> list[str]:
    """Valid but outside the writing guide: one line per rubric whose key-point count is not 4–8."""
    low, high = RECOMMENDED_KEY_POINTS
    where = f"{directory}: " if directory is not None else ""
    lines = []
    for r in rubrics:
        n = len(r.key_points)
        if not low <= n <= high:
            lines.append(f"{where}{r.id}: {n} key point{'s' if n != 1 else ''} (the guide recommends {low}–{high}: "
                         f"{'fewer make the score coarse' if n < low else 'more make each one count for little'})")
    return lines


def check_section(section: str | None) -> None:
    """UsageError naming the valid sections when `section` is not one of them (None means all)."""
    if section is not None and section not in SECTIONS:
        raise UsageError(f"unknown section {quote_name(section)}: choose one of {', '.join(SECTIONS)}")


def normalise_id(raw: str) -> str:
    """`q3`, `Q03`, `3` and `q03` all name question q03; other ids pass through lower-cased."""
    text = raw.strip().lower()
    m = re.fullmatch(r"q?0*(\d{1,3})", text)
    if m:
        return f"q{int(m.group(1)):02d}"
    return text


_HASHES: dict[int, tuple[Rubric, str]] = {}


def rubric_hash(rubric: Rubric) -> str:
    """Content hash of a rubric. Memoised per object (the pipeline asks several times per answer);
    the cache keeps the rubric alive so its id() cannot be reused by another object."""
    hit = _HASHES.get(id(rubric))
    if hit is not None and hit[0] is rubric:
        return hit[1]
    canonical = json.dumps(rubric.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    if len(_HASHES) > 1024:
        _HASHES.clear()
    _HASHES[id(rubric)] = (rubric, digest)
    return digest


@dataclass
class RubricBank:
    """The rubrics in effect, keyed by question id, in question order."""

    rubrics: dict[str, Rubric] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Rubric]:
        return iter(sorted(self.rubrics.values(), key=lambda r: (r.number == 0, r.number, r.id)))

    def __len__(self) -> int:
        return len(self.rubrics)

    def __contains__(self, qid: object) -> bool:
        return isinstance(qid, str) and normalise_id(qid) in self.rubrics

    def ids(self) -> list[str]:
        return [r.id for r in self]

    def get(self, qid: str) -> Rubric:
        """The rubric for a question id in any accepted spelling, or UnknownQuestionError with near matches."""
        key = normalise_id(qid)
        if key in self.rubrics:
            return self.rubrics[key]
        raise UnknownQuestionError(qid, difflib.get_close_matches(key, list(self.rubrics), n=3, cutoff=0.5))

    def by_section(self, section: str | None) -> list[Rubric]:
        check_section(section)
        return [r for r in self if section is None or r.section == section]


def load_rubrics(extra_dir: str | os.PathLike[str] | None = None, *, include_builtin: bool = True) -> RubricBank:
    """The built-in bank, extended (and where ids collide, overridden) by ``extra_dir`` or
    ``$MLGRADE_RUBRICS``. Raises RubricError listing every problem found."""
    dirs: list[Path] = []
    if include_builtin:
        dirs.append(builtin_rubrics_dir())
    user = extra_dir if extra_dir is not None else os.environ.get("MLGRADE_RUBRICS") or None
    if user:
        dirs.append(Path(user).expanduser())
    bank: dict[str, Rubric] = {}
    problems: list[str] = []
    for d in dirs:
        found, errs = load_dir(d)
        problems.extend(errs)
        bank.update(found)
    if problems:
        raise RubricError(problems)
    return RubricBank(bank)


def iter_rubrics(bank: RubricBank, ids: Iterable[str] | None = None) -> Iterator[Rubric]:
    if ids is None:
        yield from bank
    else:
        for qid in ids:
            yield bank.get(qid)
