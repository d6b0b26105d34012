"""What mlgrade remembers of `eval --builtin`: one record per grader setting, in the Store under
MLGRADE_HOME, and the short lines shown from it (doctor, the reminder in grade/practice/batch,
`report` and `--json`).

A setting is (grader, model, base URL without credentials, judge variant, samples). A record
also keeps the prompt hash and the rubric-set hash it was measured under: when either differs
from today's, the figure is shown as stale (the prompt or the rubrics changed since).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import redact_url
from .store import Store, now_iso

if TYPE_CHECKING:
    from .config import Settings
    from .rubrics import RubricBank

RUN_HINT = "mlgrade eval --builtin --sample 25"
SOURCE = "expert-graded answers (built-in)"


@dataclass(frozen=True)
class Setting:
    """The grader setting a figure belongs to."""

    grader: str  # llm | offline
    model: str = ""
    base_url: str = ""
    judge: str = ""
    samples: int = 1

    @property
    def label(self) -> str:
        if self.grader != "llm":
            return "the offline grader"
        return f"{self.model} ({self.judge})" if self.judge and self.judge != "verdict-first" else self.model


def setting_for(settings: Settings, grader_kind: str | None = None, judge: str | None = None) -> Setting:
    kind = grader_kind or settings.grader_kind
    if kind != "llm":
        return Setting("offline")
    from .graders.client import endpoint_url

    return Setting("llm", settings.model, redact_url(endpoint_url(settings)) or "", judge or settings.judge)


def prompt_hash(setting: Setting) -> str:
    """What the judge is asked, independent of the rubric and the endpoint: the two templates and
    the reply schema's shape for the judge variant. (The offline grader has no prompt.)"""
    if setting.grader != "llm":
        return ""
    from .graders.llm import VERDICT_MODELS
    from .graders.prompts import load_template
    from .graders.replies import strict_schema

    static = {"system": load_template("grade.system.md"), "user": load_template("grade.user.md"),
              "verdict": strict_schema(VERDICT_MODELS[setting.judge or "verdict-first"])}
    return hashlib.sha256(json.dumps(static, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def rubric_set_hash(bank: RubricBank, question_ids: list[str] | None = None) -> str:
    """One hash over the rubrics of the given questions (default: the whole bank)."""
    from .rubrics import rubric_hash

    ids = sorted(question_ids if question_ids is not None else bank.ids())
    joined = ",".join(f"{qid}:{rubric_hash(bank.get(qid))}" for qid in ids if qid in bank)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:16]


@dataclass
class Measurement:
    setting: Setting
    prompt_hash: str
    rubric_hash: str
    answers: int
    created_at: str
    figures: dict[str, Any] = field(default_factory=dict)
    stale: bool = False
    stale_reason: str = ""

    @property
    def date(self) -> str:
        return self.created_at[:10]

    @property
    def worse_than_offline(self) -> bool:
        return bool(self.figures.get("worse_than_offline"))

    def to_dict(self) -> dict[str, Any]:
        f = self.figures
        return {"measured": True, "grader": self.setting.grader, "model": self.setting.model,
                "judge": self.setting.judge, "date": self.created_at, "answers": self.answers,
                "band_accuracy": f.get("band_accuracy"), "band_accuracy_ci": f.get("band_accuracy_ci"),
                "spearman": f.get("spearman"), "offline_band_accuracy": f.get("offline_band_accuracy"),
                "worse_than_offline": self.worse_than_offline, "stale": self.stale,
                "stale_reason": self.stale_reason or None, "source": SOURCE}


def save(store: Store, setting: Setting, *, prompt: str, rubrics: str, answers: int, figures: dict[str, Any]) -> None:
    with store.transaction() as db:
        db.execute("INSERT INTO measurements (grader, model, base_url, judge, samples, prompt_hash, rubric_hash, answers,"
                   " data_json, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                   (setting.grader, setting.model, setting.base_url, setting.judge, setting.samples, prompt, rubrics,
                    answers, json.dumps(figures), now_iso()))


def latest(store: Store, setting: Setting) -> Measurement | None:
    """The newest record of this setting (not yet checked for staleness)."""
    row = store.db.execute(
        "SELECT prompt_hash, rubric_hash, answers, data_json, created_at FROM measurements WHERE grader = ? AND model = ?"
        " AND base_url = ? AND judge = ? AND samples = ? ORDER BY created_at DESC, id DESC LIMIT 1",
        (setting.grader, setting.model, setting.base_url, setting.judge, setting.samples)).fetchone()
    if row is None:
        return None
    try:
        figures = json.loads(row["data_json"])
    except (ValueError, TypeError):
        return None  # a damaged record is no record: measure again
    if not isinstance(figures, dict):
        return None
    return Measurement(setting, row["prompt_hash"], row["rubric_hash"], row["answers"], row["created_at"], figures)


def lookup(settings: Settings, *, bank: RubricBank | None = None, grader_kind: str | None = None,
           store: Store | None = None) -> tuple[Setting, Measurement | None]:
    """The configured grader's setting and its newest measurement, marked stale when the prompt
    or the rubrics changed since."""
    setting = setting_for(settings, grader_kind)
    if store is None:
        with Store.for_settings(settings) as own:
            found = latest(own, setting)
    else:
        found = latest(store, setting)
    if found is not None:
        if found.prompt_hash != prompt_hash(setting):
            found.stale, found.stale_reason = True, "the prompt changed since"
        else:
            if bank is None:
                from .rubrics import load_rubrics

                bank = load_rubrics(settings.rubrics_dir)
            if found.rubric_hash != rubric_set_hash(bank, found.figures.get("questions")):
                found.stale, found.stale_reason = True, "the rubrics changed since"
    return setting, found


def _pct(v: Any) -> str:
    return "—" if v is None else f"{v:.0%}"


def figure_line(setting: Setting, m: Measurement | None) -> str:
    """`doctor`'s line: the figure, or how to get one."""
    if m is None:
        return f"{setting.label}: not measured yet: run `{RUN_HINT}`"
    f = m.figures
    spearman = "—" if f.get("spearman") is None else f"{f['spearman']:.2f}"
    line = (f"{setting.label}: measured {m.date} on {m.answers} expert-graded answers: band accuracy "
            f"{_pct(f.get('band_accuracy'))}, Spearman {spearman}")
    if setting.grader == "llm" and f.get("offline_band_accuracy") is not None:
        line += f" (offline grader {_pct(f['offline_band_accuracy'])})"
    if m.stale:
        line += f"; stale: {m.stale_reason}, run `{RUN_HINT}` again"
    return line


def reminder_line(setting: Setting, m: Measurement | None) -> str | None:
    """The one line `grade`, `practice` and `batch` show for an LLM grader never measured, or
    measured worse than the offline grader; None when there is nothing to say."""
    if setting.grader != "llm":
        return None
    if m is None:
        return (f"note: {setting.label} was never measured against expert grades: `{RUN_HINT}` shows how far to "
                "trust it")
    if m.worse_than_offline:
        f = m.figures
        stale = " (stale)" if m.stale else ""
        return (f"note: {setting.label} agreed with the experts less than the offline grader{stale}: band accuracy "
                f"{_pct(f.get('band_accuracy'))} vs {_pct(f.get('offline_band_accuracy'))} on {m.answers} answers "
                f"({m.date}); consider --grader offline")
    return None


def figure_dict(setting: Setting, m: Measurement | None) -> dict[str, Any]:
    """The figure for `--json` results and reports: the measurement, or its absence."""
    if m is None:
        return {"measured": False, "grader": setting.grader, "model": setting.model, "judge": setting.judge,
                "hint": RUN_HINT}
    return m.to_dict()


def configured_figure(settings: Settings, *, bank: RubricBank | None = None,
                      grader_kind: str | None = None) -> tuple[Setting, Measurement | None] | None:
    """`lookup` for the commands' side lines: None when the store cannot be read (a damaged file
    is reported by the command's own use of the store, never by a side line)."""
    import sqlite3

    from .errors import MlgradeError

    try:
        return lookup(settings, bank=bank, grader_kind=grader_kind)
    except (MlgradeError, OSError, sqlite3.Error):
        return None


def side_figure(settings: Settings, *, bank: RubricBank | None = None) -> tuple[str | None, dict[str, Any]]:
    """For `grade`, `practice`, `batch` and `report`: the reminder line (or None) and the figure
    for --json. Reads the store only when it exists: grading offline never creates one for this."""
    setting = setting_for(settings)
    found = configured_figure(settings, bank=bank) if settings.db_path.is_file() else None
    m = found[1] if found else None
    return reminder_line(setting, m), figure_dict(setting, m)


def latest_for_model(store: Store, grader: str, model: str) -> Measurement | None:
    """The newest record of a grader and model under any endpoint or judge variant (a results
    file says which model graded it, not the rest of the setting)."""
    row = store.db.execute("SELECT grader, model, base_url, judge, samples FROM measurements WHERE grader = ? AND model = ?"
                           " ORDER BY created_at DESC, id DESC LIMIT 1", (grader, model if grader == "llm" else "")
                           ).fetchone()
    return latest(store, Setting(*row)) if row else None


def figures_for_graders(graders: list[tuple[str, str]], settings: Settings | None = None) -> list[dict[str, Any]]:
    """For a report: each (grader, model) that graded the results, with its figure or its absence
    and a `line` to print. Staleness is not judged here: the results may predate today's rubrics."""
    import sqlite3

    from .config import load_settings
    from .errors import MlgradeError

    settings = settings or load_settings()
    out: list[dict[str, Any]] = []
    store = None
    try:
        if settings.db_path.is_file():
            store = Store.for_settings(settings)
        for grader, model in graders:
            setting = Setting(grader if grader == "llm" else "offline", model if grader == "llm" else "")
            m = latest_for_model(store, setting.grader, setting.model) if store is not None else None
            if m is not None:
                setting = m.setting
            fig = figure_dict(setting, m)
            fig["line"] = figure_line(setting, m).replace(f"{setting.label}: ", f"{setting.label}: expert agreement ", 1) \
                if m is not None else f"{setting.label} was never measured against expert grades (`{RUN_HINT}`)"
            out.append(fig)
    except (MlgradeError, OSError, sqlite3.Error):
        pass  # a report never fails for its side line
    finally:
        if store is not None:
            store.close()
    return out
