"""mlgrade: practise and grade machine-learning interview answers against rubrics.

The public Python API mirrors the CLI; heavy modules load only when used, so importing
`mlgrade` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["load_rubrics", "grade", "agrade", "grade_many", "load_settings", "choose_follow_up", "grade_follow_up",
           "agrade_follow_up", "__version__"]

_LAZY = {
    "load_rubrics": ("mlgrade.rubrics", "load_rubrics"),
    "grade": ("mlgrade.grading", "grade"),
    "agrade": ("mlgrade.grading", "agrade"),
    "grade_many": ("mlgrade.batch.engine", "grade_many"),
    "load_settings": ("mlgrade.config", "load_settings"),
    "choose_follow_up": ("mlgrade.followup", "choose_follow_up"),
    "grade_follow_up": ("mlgrade.followup", "grade_follow_up"),
    "agrade_follow_up": ("mlgrade.followup", "agrade_follow_up"),
}

if TYPE_CHECKING:  # pragma: no cover
    from .batch.engine import grade_many
    from .config import load_settings
    from .followup import agrade_follow_up, choose_follow_up, grade_follow_up
    from .grading import agrade, grade
    from .rubrics import load_rubrics


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'mlgrade' has no attribute {name!r}")
