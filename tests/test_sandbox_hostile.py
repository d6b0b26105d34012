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
from test_sandbox import bwrap_mode  # noqa: F401  (a fixture: skips where bwrap cannot run)

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
    from mlgrade.code.tree import remove_tree
    from mlgrade.code.wasm_host import OVER, _dir_bytes

    deep = tmp_path / "deep"
    deep.mkdir()
    _deep_tree(deep, 1400)
    try:
        assert _dir_bytes(str(deep)) == OVER  # past MAX_DEPTH: over the cap, never a RecursionError
    finally:  # pytest's own clean-up of old temp folders recurses and would fail on it in a later run
        assert remove_tree(str(deep))
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


# --------------------------------------------------------------------------- H8: the compiled-module cache


@pytest.fixture(scope="module")
def verified_cache(tmp_path_factory):
    """A private copy of the cache, verified (compiled again if its digest was never recorded), so
    these tests damage only their own copies."""
    status = sandbox_status("wasm")
    if not status.available:
        pytest.skip(status.reason)
    base = tmp_path_factory.mktemp("cache")
    source = sandbox.cache_dir() / "wasm"
    if source.is_dir():
        shutil.copytree(source, base / "wasm", ignore=shutil.ignore_patterns("*.lock", ".stdlib-*"))
    mp = pytest.MonkeyPatch()
    mp.setenv("MLGRADE_CACHE_DIR", str(base))
    try:
        sandbox.ensure_compiled()
    finally:
        mp.undo()
    return base


@pytest.fixture
def cache_copy(verified_cache, tmp_path, monkeypatch):
    copy = tmp_path / "cache"
    shutil.copytree(verified_cache, copy)
    monkeypatch.setenv("MLGRADE_CACHE_DIR", str(copy))
    monkeypatch.setattr(sandbox, "_rebuilt", set(), raising=False)
    runtime, _ = sandbox._locate("wasm")
    return runtime


def test_truncated_compiled_module_is_rebuilt_not_charged_to_the_code(cache_copy):
    from mlgrade.doctor import sandbox_info

    with open(cache_copy.module_path, "r+b") as f:
        f.truncate(1_000_000)
    info = sandbox_info()
    assert not info["compiled"] and "fails its check" in info["summary"], info["summary"]
    r = run_python("print('ok')", limits=Limits(timeout=10.0))
    assert r.ok and r.stdout.strip() == "ok", r
    assert cache_copy.module_path.stat().st_size > 1_000_000
    assert sandbox_status("wasm").compiled


def test_correct_code_is_not_failed_by_a_damaged_cache(cache_copy, bank):
    from mlgrade.code.codegrade import run_rubric_tests

    with open(cache_copy.module_path, "r+b") as f:  # the review's case: 20.0 poor for correct code
        f.truncate(1_000_000)
    results = run_rubric_tests(bank.get("q24"), CORRECT24)
    assert results and {r.status for r in results} == {"passed"}, results


def test_same_size_damage_is_caught_by_the_recorded_digest(cache_copy):
    from mlgrade.code.wasm_cache import module_problem

    assert module_problem(cache_copy.module_path, cache_copy.meta_path) is None
    data = bytearray(cache_copy.module_path.read_bytes())
    for k in range(len(data) // 2, len(data) // 2 + 64):
        data[k] ^= 0xFF  # bit rot in the middle: same size, so only the digest can tell
    cache_copy.module_path.write_bytes(bytes(data))
    assert "does not match" in module_problem(cache_copy.module_path, cache_copy.meta_path)
    assert not sandbox_status("wasm").compiled


def test_a_sandbox_that_cannot_load_is_code_not_run_with_the_text_judged(cache_copy, bank, monkeypatch):
    from mlgrade.code.codegrade import run_rubric_tests
    from mlgrade.code.wasm_cache import file_hash, write_meta

    cache_copy.module_path.write_bytes(b"\0asm not a compiled module")  # e.g. built by another wasmtime
    write_meta(cache_copy.meta_path, seconds=1.0, sha256=file_hash(cache_copy.module_path))
    monkeypatch.setattr(sandbox, "_rebuilt", {str(cache_copy.module_path)}, raising=False)  # already rebuilt once here
    results = run_rubric_tests(bank.get("q24"), CORRECT24)
    assert [r.status for r in results] == ["not-run"], results
    assert "sandbox failed" in results[0].error


def test_damaged_unpacked_stdlib_is_not_used(cache_copy):
    from mlgrade.code import wasm_cache

    sandbox.ensure_compiled(cache_copy)
    target = cache_copy.unpacked_stdlib / "local/lib/python3.11/json/__init__.pyc"
    if not target.exists():
        target = next((cache_copy.unpacked_stdlib / "local/lib/python3.11").rglob("*.pyc"))
    target.write_bytes(b"garbage")
    wasm_cache._stdlib_intact.cache_clear()  # checked once per process: this test is a later process
    assert cache_copy.stdlib_for_run() == cache_copy.stdlib_dir  # the pinned zip, not the damaged copy
    sandbox.ensure_compiled(cache_copy)  # unpacked again
    assert cache_copy.stdlib_for_run() == cache_copy.unpacked_stdlib
    r = run_python("import json; print(json.dumps([1]))", limits=Limits(timeout=10.0))
    assert r.ok and r.stdout.strip() == "[1]", r


# --------------------------------------------------------------------------- H9: bwrap memory per answer


def test_bwrap_threads_share_one_memory_limit(bwrap_mode):
    program = """
import threading
held, failed = [], []
def grab():
    try:
        held.append(bytearray(100 * 1024 * 1024))
    except MemoryError:
        failed.append(1)
threads = [threading.Thread(target=grab) for _ in range(6)]
[t.start() for t in threads]
[t.join() for t in threads]
print('held', len(held), 'failed', len(failed))
"""
    r = run_python(program, limits=Limits(timeout=10.0, memory_bytes=128 * 2**20))
    held = int(r.stdout.split()[1])
    assert held * 100 <= 128 + 192, r  # the answer's one address-space limit, however many threads


def test_bwrap_is_refused_where_its_memory_cannot_be_bounded(monkeypatch):
    from mlgrade.code import bwrap

    monkeypatch.setenv("MLGRADE_SANDBOX", "bwrap")
    monkeypatch.setattr(bwrap.platform, "machine", lambda: "riscv64")
    status = sandbox_status()
    assert not status.available and "memory" in status.reason and "wasm" in status.reason


def test_a_guest_holding_every_descriptor_does_not_make_the_disk_look_over(tmp_path):
    """The guest's open files are the sandbox host's: code that opened every one of them made the
    disk watchdog's scan fail (EMFILE), which counts as over the cap, so a run was killed for a disk
    fault it did not commit (and lost its hidden cases). One descriptor is kept back for the scan."""
    import subprocess
    import sys

    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "f").write_bytes(b"x" * 5000)
    script = f"""
import os, resource
from mlgrade.code import wasm_host
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
wasm_host.keep_spare_descriptor()
held = []
while True:
    try:
        held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        break
assert 0 < wasm_host._dir_bytes({str(tmp_path / "work")!r}) < wasm_host.OVER
assert 0 < wasm_host._dir_bytes({str(tmp_path / "work")!r}) < wasm_host.OVER  # the spare came back
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
