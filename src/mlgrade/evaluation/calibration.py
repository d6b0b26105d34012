"""A monotone map from mlgrade's 0–100 score to a data set's own scale (isotonic regression).

mlgrade's score says how much of a rubric an answer covers; a data set's graders use their own
scale and leniency (Mohler's graders give 5/5 to half the answers). Agreement statistics that
compare values (RMSE, kappa) are only meaningful once the score is put on the graders' scale.
Isotonic regression is the least-assuming such map: non-decreasing, so it never reorders
answers (Pearson may move, Spearman cannot fall), and fitted by pool-adjacent-violators.

Between fitted points the map interpolates linearly; outside them it is flat (as scikit-learn's
`IsotonicRegression(out_of_bounds="clip")`). Fit on data held apart from what you measure.

A map only means something on the scale it was fitted to: the file records that scale and the
kind of data (`human-scores`: a CSV's score column; `expert`: an expert set's 0-100 scores), and
`check_target` refuses to apply it to anything else.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError

FORMAT = "mlgrade-calibration/1"


def pool_adjacent_violators(y: Sequence[float], w: Sequence[float] | None = None) -> list[float]:
    """The non-decreasing sequence closest to `y` in weighted least squares (`y` already ordered by x)."""
    w = list(w) if w is not None else [1.0] * len(y)
    # Each block: (weighted mean, total weight, number of points)
    blocks: list[list[float]] = []
    for value, weight in zip(y, w):
        blocks.append([float(value), float(weight), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, n2 = blocks.pop()
            m1, w1, n1 = blocks[-1]
            total = w1 + w2
            blocks[-1] = [(m1 * w1 + m2 * w2) / total, total, n1 + n2]
    out: list[float] = []
    for mean, _, n in blocks:
        out.extend([mean] * int(n))
    return out


@dataclass(frozen=True)
class Calibration:
    xs: tuple[float, ...]  # increasing knots on mlgrade's 0-100 scale
    ys: tuple[float, ...]  # non-decreasing values on the data set's scale
    n: int = 0
    source: str = ""
    scale: tuple[float, float] | None = None  # the target scale it was fitted on (None: an old file)
    data: str = ""  # human-scores | expert ("" : an old file)
    dataset_sha256: str = ""  # the file it was fitted on ("" : unrecorded), to tell an in-sample measure

    def fitted_on(self, dataset: str | Path) -> bool:
        """Whether `dataset` is the very file this map was fitted on (same bytes): agreement
        measured there is in-sample, so better than the map will do on new data."""
        return bool(self.dataset_sha256) and dataset_fingerprint(dataset) == self.dataset_sha256

    def describe(self) -> str:
        scale = f"{self.scale[0]:g}-{self.scale[1]:g}" if self.scale else "an unrecorded scale"
        kind = {"expert": "an expert set", "human-scores": "human scores"}.get(self.data, "unrecorded data")
        return f"{kind} on {scale}"

    def check_target(self, scale: tuple[float, float] | None, data: str, *, where: str = "the calibration") -> None:
        """Refuse to apply this map to a data set of another kind or scale (its values would be
        on the wrong scale). A file from before scales were recorded is accepted as it is."""
        if self.scale is None and scale is not None and (self.ys[0] < scale[0] or self.ys[-1] > scale[1]):
            raise UsageError(f"{where} maps scores to {self.ys[0]:g}-{self.ys[-1]:g}, outside this data set's scale "
                             f"({scale[0]:g}-{scale[1]:g}): fit one on this data with --fit-calibration")
        if self.scale is None and not self.data:
            return
        wanted = Calibration((0.0,), (0.0,), scale=scale, data=data)
        same_scale = self.scale is None or scale is None or (
            math.isclose(self.scale[0], scale[0]) and math.isclose(self.scale[1], scale[1]))
        if (self.data and self.data != data) or not same_scale:
            raise UsageError(f"{where} was fitted on {self.describe()} ({self.source or 'unknown source'}); this data set "
                             f"is {wanted.describe()}: fit one on this kind of data with --fit-calibration")

    def __call__(self, score: float) -> float:
        xs, ys = self.xs, self.ys
        if score <= xs[0]:
            return ys[0]
        if score >= xs[-1]:
            return ys[-1]
        i = bisect_right(xs, score)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 if x1 == x0 else y0 + (y1 - y0) * (score - x0) / (x1 - x0)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "method": "isotonic", "n": self.n, "source": self.source,
                "data": self.data or None, "scale": list(self.scale) if self.scale else None,
                "dataset_sha256": self.dataset_sha256 or None,
                "x": [round(v, 4) for v in self.xs], "y": [round(v, 4) for v in self.ys]}

    def save(self, path: str | Path) -> None:
        save_calibration(self, path)


def fit_isotonic(scores: Sequence[float], targets: Sequence[float], *, source: str = "",
                 scale: tuple[float, float] | None = None, data: str = "") -> Calibration:
    """Fit the map from (score, target) pairs. Tied scores are pooled first (their mean target),
    so the map is a function of the score."""
    if len(scores) != len(targets):
        raise ValueError("scores and targets differ in length")
    pairs = [(float(s), float(t)) for s, t in zip(scores, targets) if math.isfinite(s) and math.isfinite(t)]
    if len(pairs) < 2:
        raise UsageError("calibration needs at least two graded rows")
    pairs.sort()
    xs: list[float] = []
    sums: list[float] = []
    counts: list[float] = []
    for s, t in pairs:
        if xs and xs[-1] == s:
            sums[-1] += t
            counts[-1] += 1
        else:
            xs.append(s)
            sums.append(t)
            counts.append(1)
    fitted = pool_adjacent_violators([a / c for a, c in zip(sums, counts)], counts)
    # Keep only the ends of each flat run: the same function with fewer knots.
    kx, ky = [], []
    for i, (x, y) in enumerate(zip(xs, fitted)):
        prev_same = i > 0 and fitted[i - 1] == y
        next_same = i + 1 < len(xs) and fitted[i + 1] == y
        if not (prev_same and next_same):
            kx.append(x)
            ky.append(y)
    return Calibration(tuple(kx), tuple(ky), n=len(pairs), source=source, scale=scale, data=data)


MAX_CALIBRATION_BYTES = 16 * 2**20  # a fitted map has at most one knot per distinct score: far less
MAX_ABS_VALUE = 1e9  # a map with no recorded scale: values past this are not a grading scale


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _read_json(path: Path) -> Any:
    from ..textfiles import refuse_special

    refuse_special(path, "a calibration file (JSON written by --fit-calibration)")
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CALIBRATION_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: not a calibration file ({exc.strerror})") from None
    if len(raw) > MAX_CALIBRATION_BYTES:
        raise UsageError(f"{path}: not a calibration file (over {MAX_CALIBRATION_BYTES // 2**20} MB)")
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise UsageError(f"{path}: not a calibration file (JSON nested too deeply)") from None
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: bad JSON, or an int of thousands of digits
        raise UsageError(f"{path}: not a calibration file ({exc.__class__.__name__})") from None


def load_calibration(path: str | Path) -> Calibration:
    """A map written by --fit-calibration. Anything else, or a map whose values leave the scale it
    records (or, with none recorded, any plausible scale), is one UsageError naming the file."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{path}: not a calibration file (expected \"format\": \"{FORMAT}\")")
    xs, ys = data.get("x"), data.get("y")
    ok = (isinstance(xs, list) and isinstance(ys, list) and len(xs) == len(ys) and xs
          and all(_number(v) for v in xs + ys)
          and all(a <= b for a, b in zip(xs, xs[1:])) and all(a <= b for a, b in zip(ys, ys[1:])))
    if not ok:
        raise UsageError(f"{path}: calibration points must be two equally long, non-decreasing number lists")
    if xs[0] < 0 or xs[-1] > 100:
        raise UsageError(f"{path}: calibration \"x\" values are mlgrade scores: they must lie within 0-100")
    scale = data.get("scale")
    if scale is not None and not (isinstance(scale, list) and len(scale) == 2 and all(_number(v) for v in scale)
                                  and scale[0] < scale[1] and max(abs(scale[0]), abs(scale[1])) <= MAX_ABS_VALUE):
        raise UsageError(f"{path}: \"scale\" must be [low, high]")
    low, high = (float(scale[0]), float(scale[1])) if scale else (-MAX_ABS_VALUE, MAX_ABS_VALUE)
    slack = (high - low) * 1e-6 + 1e-4  # the file rounds values to 4 places
    if ys[0] < low - slack or ys[-1] > high + slack:
        where = f"the scale it records ({low:g}-{high:g})" if scale else f"±{MAX_ABS_VALUE:g}"
        raise UsageError(f"{path}: calibration \"y\" values run from {ys[0]:g} to {ys[-1]:g}, outside {where}: "
                         "not a map fitted by mlgrade; fit one again with --fit-calibration")
    kind = data.get("data") or ""
    if kind not in ("", "expert", "human-scores"):
        raise UsageError(f"{path}: \"data\" must be \"expert\" or \"human-scores\"")
    n = data.get("n")
    if n is not None and not (isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 10**12):
        raise UsageError(f"{path}: \"n\" must be the number of rows it was fitted on (a whole number)")
    source = data.get("source")
    digest = data.get("dataset_sha256") or ""
    return Calibration(tuple(float(v) for v in xs), tuple(float(v) for v in ys), n=n or 0,
                       source=source[:500] if isinstance(source, str) else "",
                       scale=(float(scale[0]), float(scale[1])) if scale else None, data=kind,
                       dataset_sha256=digest[:64] if isinstance(digest, str) else "")


def dataset_fingerprint(path: str | Path) -> str:
    """SHA-256 of a data set file's bytes ("" when it cannot be read)."""
    import hashlib

    h = hashlib.sha256()
    try:
        with Path(path).open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return ""
    return h.hexdigest()


def save_calibration(calibration: Calibration, path: str | Path) -> None:
    """Write the map; an existing file is replaced only if it is itself a calibration file."""
    from ..textfiles import write_output

    path = Path(path)

    def is_calibration(head: bytes) -> bool:
        try:
            load_calibration(path)
        except UsageError:
            return False
        return True

    write_output(path, json.dumps(calibration.to_dict(), indent=1) + "\n", ours=is_calibration,
                 option="--fit-calibration")
