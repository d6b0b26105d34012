"""Issue 27 M4 and issue 26: a tampered calibration file is one line naming it (never a traceback),
values far outside the recorded scale are refused, and a FIFO is refused without being opened."""

from __future__ import annotations

import json
import os
import threading

import pytest
from csv_helpers import memory_scores

from mlgrade.errors import UsageError
from mlgrade.evaluation.calibration import load_calibration

BASE = {"format": "mlgrade-calibration/1", "method": "isotonic", "n": 4, "source": "d.csv", "data": "human-scores",
        "scale": [0, 5], "x": [0.0, 50.0, 100.0], "y": [1.0, 3.0, 5.0]}


def _raw(**changes):
    return json.dumps({**BASE, **changes})


TAMPERED = {
    "n-text": _raw(n="abc"),
    "n-huge-float": _raw(n=1).replace('"n": 1', '"n": 1e400'),
    "n-list": _raw(n=[1]),
    "n-5000-digits": _raw(n=1).replace('"n": 1', '"n": ' + "9" * 5000),
    "nested": '{"format": "mlgrade-calibration/1", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "y-1e308": _raw(y=[0.0, 1e308, 1e308]),
    "y-off-scale": _raw(y=[-1000.0, 3.0, 1e6]),
    "x-off-scale": _raw(x=[-50.0, 50.0, 1e9]),
    "no-scale-absurd": _raw(scale=None, data=None, y=[0.0, 1.0, 1e300]),
}


@pytest.mark.parametrize("name", sorted(TAMPERED))
def test_tampered_calibration_is_one_usage_error(tmp_path, name):
    path = tmp_path / "c.json"
    path.write_text(TAMPERED[name])
    with pytest.raises(UsageError, match="c.json"):
        load_calibration(path)


@pytest.fixture
def dataset(tmp_path):
    return memory_scores(tmp_path / "mini.csv")


@pytest.mark.parametrize("name", ["n-text", "n-huge-float", "nested", "y-1e308", "y-off-scale"])
def test_eval_with_a_tampered_calibration_is_one_line(tmp_path, cli, dataset, name):
    path = tmp_path / "c.json"
    path.write_text(TAMPERED[name])
    res = cli(["eval", dataset, "--scale", "0-5", "--grader", "offline", "--calibration", path])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert res.stderr.startswith("error: ") and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_an_old_file_without_a_scale_is_refused_on_a_scale_its_values_leave(tmp_path, cli, dataset):
    path = tmp_path / "old.json"
    path.write_text(_raw(scale=None, data=None, y=[0.0, 40.0, 90.0]))
    res = cli(["eval", dataset, "--scale", "0-5", "--grader", "offline", "--calibration", path])
    assert res.exit_code == 2 and "outside this data set's scale" in res.stderr, res.output


def test_an_honest_file_still_loads(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(_raw())
    cal = load_calibration(path)
    assert cal.scale == (0.0, 5.0) and cal.n == 4 and cal(100) == 5.0


def test_a_fifo_as_the_calibration_is_refused_not_opened(tmp_path, cli, dataset):
    fifo = tmp_path / "cal.json"
    os.mkfifo(fifo)
    rescuer = threading.Timer(10, _unblock, (fifo,))  # code that opens the FIFO blocks: fail, never hang
    rescuer.start()
    try:
        res = cli(["eval", dataset, "--scale", "0-5", "--grader", "offline", "--calibration", fifo])
    finally:
        rescuer.cancel()
    assert res.exit_code == 2 and "FIFO" in res.stderr, res.output


def _unblock(fifo):
    fd = os.open(fifo, os.O_RDWR)  # never blocks on Linux: the blocked reader then reads "{}" and EOF
    os.write(fd, b"{}")
    os.close(fd)
