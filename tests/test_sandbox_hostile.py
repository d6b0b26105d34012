"""Issue 27: the sandbox against hostile trees and a damaged cache. A directory tree of any depth
is measured and removed without recursion (H5); the cached compiled interpreter is verified by
the hash recorded when it was written and rebuilt when damaged, and a failure of the sandbox
itself is never charged to the candidate (H8)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from mlgrade.code import sandbox
from mlgrade.code.sandbox import Limits, run_python, sandbox_status

DEEP = "import os\np = '/tmp'\nfor i in range(1400):\n    p += '/d'\n    os.mkdir(p)\n"
CORRECT24 = "def can_shift(a, b):\n    return len(a) == len(b) and b in a + a\n"


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    private = tmp_path / "tmp"  # our own temp root: other processes on the machine make sandboxes too
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    return private


@pytest.fixture
def wasm_mode():
    status = sandbox_status("wasm")
    if not status.available:
        pytest.skip(status.reason)


def _deep_tree(root, depth: int) -> None:
    """`depth` nested directories under root, made relative to a directory descriptor, so the
    deepest path may be longer than PATH_MAX (as a guest can make them)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d" * 50, dir_fd=fd)
            inner = os.open("d" * 50, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    finally:
        os.close(fd)


def test_tree_of_any_depth_is_measured_without_recursion(tmp_path):
    from mlgrade.code.wasm_host import OVER, _dir_bytes

    _deep_tree(tmp_path, 1400)
    assert _dir_bytes(str(tmp_path)) == OVER  # past MAX_DEPTH: over the cap, never a RecursionError
    shallow = tmp_path / "shallow"
    (shallow / "a" / "b").mkdir(parents=True)
    (shallow / "a" / "b" / "f").write_bytes(b"x" * 10_000)
    assert 10_000 <= _dir_bytes(str(shallow)) < 100_000


def test_tree_of_any_depth_is_removed(tmp_path):
    from mlgrade.code.tree import remove_tree

    root = tmp_path / "root"
    (root / "work0").mkdir(parents=True)
    _deep_tree(root / "work0", 3000)  # 3000 x 51 characters: far past PATH_MAX
    (root / "work0" / "keep-out").symlink_to(tmp_path / "outside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "precious").write_text("x")
    assert remove_tree(str(root)) and not root.exists()
    assert (tmp_path / "outside" / "precious").read_text() == "x"  # the symlink was removed, not followed


def test_deep_tree_in_the_guest_is_a_disk_interrupt_and_leaves_nothing(wasm_mode, private_tmp):
    r = run_python(DEEP + "print('done')", limits=Limits(timeout=10.0))
    assert r.interrupted == "disk", r
    assert list(private_tmp.iterdir()) == []


def test_deep_tree_then_a_disk_fill_is_still_capped(wasm_mode, private_tmp):
    program = DEEP.replace("1400", "1100") + """
import time
time.sleep(0.3)
for k in range(250):
    try:
        with open('/tmp/fill%d' % k, 'wb') as f:
            f.write(b'x' * (8 * 2**20 - 1))
    except OSError:
        break
print('wrote', k)
"""
    r = run_python(program, limits=Limits(timeout=10.0))
    assert r.interrupted == "disk", r
    assert "wrote 249" not in r.stdout
    assert list(private_tmp.iterdir()) == []


def test_deep_tree_answer_is_a_code_error(wasm_mode, private_tmp, bank):
    from mlgrade.code.codegrade import run_rubric_tests

    results = run_rubric_tests(bank.get("q24"), DEEP + CORRECT24)
    assert {r.status for r in results} == {"error"}, results
    assert "disk" in results[0].error
    assert list(private_tmp.iterdir()) == []
