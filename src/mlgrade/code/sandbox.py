"""Run untrusted Python (a candidate's answer) in a separate, limited process.

What it does, in layers:

* Always: a fresh interpreter (`python -I -S`) in its own session and process group, an empty
  environment, a temporary working directory that is deleted afterwards, stdin at EOF,
  rlimits set before any untrusted line runs (address space, CPU seconds, file size, open
  files, no core dumps), `socket` replaced by a refusal, stdout/stderr capped, and a wall-clock
  deadline after which the whole process group is SIGKILLed. The group is also killed when the
  program ends normally, so children it left behind do not outlive the run.
* When unprivileged user namespaces work (probed once): new user, network, PID and mount
  namespaces. No network interface exists (the socket refusal is then backed by the kernel),
  every process the code starts dies with the run even if it calls setsid(), and the
  directories in `hide` (MLGRADE_HOME, the home and working directory of the caller) are
  covered by an empty tmpfs; then all capabilities are dropped so the cover cannot be removed.

It is a guard against mistakes and casual misuse in interview answers (infinite loops, huge
allocations, output floods, a stray network call, reading the grader's key), not a jail for a
determined attacker: the code runs as your user, can read files your user can read outside the
hidden directories, and shares the process with the test harness, so it could forge its own
results. See README "Running candidates' code".
"""

from __future__ import annotations

import json
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIMEOUT = 5.0
_NAMESPACE_PREFIX = ["unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child", "--mount"]
_namespaces_ok: bool | None = None  # probed once per process

# The child's first code: read the job, apply limits, cover hidden dirs, refuse sockets, run.
# Kept to the standard library; runs under `-I -S`, so no site-packages and no PYTHON* variables.
_BOOTSTRAP = r'''
import sys, os, json, resource
job = json.loads(sys.stdin.buffer.read().decode("utf-8"))
_null = os.open(os.devnull, os.O_RDONLY); os.dup2(_null, 0); os.close(_null)
sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")
sys.stderr.reconfigure(encoding="utf-8", errors="backslashreplace")

def _hide_and_drop_privileges(paths):
    # Only inside our own user+mount namespace: cover each path with an empty tmpfs, then drop
    # every capability (bounding set too) so the code cannot unmount the cover.
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
    for p in paths:
        if os.path.isdir(p):
            if libc.mount(b"tmpfs", p.encode(), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, b"size=16k,mode=0") != 0:
                raise OSError(ctypes.get_errno(), "cannot hide " + p)
    PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    if libc.syscall(126, header, data) != 0:  # capset(2) on x86_64; verified below
        raise OSError(ctypes.get_errno(), "capset failed")
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    with open("/proc/self/status") as f:
        eff = [l for l in f if l.startswith("CapEff:")][0].split()[1]
    if int(eff, 16) != 0:
        raise OSError("capabilities still present after drop")

if job["namespaced"]:
    _hide_and_drop_privileges(job["hide"])

def _limit(which, soft, hard=None):
    resource.setrlimit(which, (soft, soft if hard is None else hard))
_limit(resource.RLIMIT_AS, job["memory_bytes"])
_limit(resource.RLIMIT_CPU, job["cpu_seconds"], job["cpu_seconds"] + 1)
_limit(resource.RLIMIT_FSIZE, job["file_bytes"])
_limit(resource.RLIMIT_NOFILE, job["open_files"])
_limit(resource.RLIMIT_CORE, 0)

import socket, _socket
def _refused(*args, **kwargs):
    raise PermissionError(13, "network access is disabled in the mlgrade sandbox")
for _mod in (socket, _socket):
    for _name in ("socket", "SocketType", "socketpair", "fromfd", "fromshare", "create_connection",
                  "create_server", "getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        if hasattr(_mod, _name):
            setattr(_mod, _name, _refused)

_report = os.fdopen(job["report_fd"], "w", encoding="utf-8", buffering=1)
def sandbox_report(obj):
    _report.write(json.dumps(obj) + "\n")
    _report.flush()

_program = compile(job["program"], "<sandbox>", "exec")
_globals = {"__name__": "__sandbox__", "__builtins__": __builtins__,
            "SANDBOX_INPUT": job["data"], "sandbox_report": sandbox_report}
del job
exec(_program, _globals)
'''


@dataclass(frozen=True)
class Limits:
    timeout: float = DEFAULT_TIMEOUT  # wall clock for the whole run, seconds
    memory_bytes: int = 512 * 2**20  # RLIMIT_AS per process
    cpu_seconds: int | None = None  # RLIMIT_CPU; default: the timeout rounded up, plus one
    file_bytes: int = 8 * 2**20  # largest file the code may write
    open_files: int = 64
    max_output: int = 64 * 1024  # bytes kept of stdout and of stderr each
    max_reports: int = 1 * 2**20  # bytes kept of the report channel
    isolate: bool = True  # use namespaces when the system allows them
    hide: tuple[str, ...] = ()  # extra directories to cover (MLGRADE_HOME...)


@dataclass
class SandboxResult:
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    reports: list[Any] = field(default_factory=list)  # objects sent with sandbox_report()
    timed_out: bool = False
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration: float = 0.0
    namespaced: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def namespaces_available() -> bool:
    """True when `unshare` can give us user+net+pid+mount namespaces here (probed once)."""
    global _namespaces_ok
    if _namespaces_ok is None:
        if os.environ.get("MLGRADE_SANDBOX_NAMESPACES", "1") == "0" or shutil.which("unshare") is None:
            _namespaces_ok = False
        else:
            try:
                probe = subprocess.run([*_NAMESPACE_PREFIX, _python(), "-I", "-S", "-c", "pass"],
                                       capture_output=True, timeout=10, env={})
                _namespaces_ok = probe.returncode == 0
            except (OSError, subprocess.SubprocessError):
                _namespaces_ok = False
    return _namespaces_ok


def _python() -> str:
    return os.path.realpath(sys.executable)


def _paths_to_hide(extra: tuple[str, ...], workdir: str) -> list[str]:
    """The caller's home and working directory plus `extra`, minus any that would hide the
    interpreter, its standard library or the sandbox's own working directory."""
    # the child runs the real interpreter (not a venv's symlink) under -S, so it needs only the
    # base installation, never the venv
    needed = {os.path.realpath(p) for p in (sys.base_prefix, _python(), workdir)}
    out: list[str] = []
    for p in (os.path.expanduser("~"), os.getcwd(), *extra):
        real = os.path.realpath(p)
        if real == "/" or not os.path.isdir(real) or real in out:
            continue
        if any(n == real or n.startswith(real.rstrip("/") + "/") for n in needed):
            continue
        out.append(real)
    return out


def run_python(program: str, *, data: Any = None, limits: Limits | None = None) -> SandboxResult:
    """Run `program` (Python source) in the sandbox. The program sees `SANDBOX_INPUT` (= data,
    JSON-serialisable) and `sandbox_report(obj)` to send JSON objects back on a private pipe."""
    limits = limits or Limits()
    namespaced = limits.isolate and namespaces_available()
    workdir = tempfile.mkdtemp(prefix="mlgrade-sandbox-")
    report_r, report_w = os.pipe()
    job = {
        "program": program, "data": data, "report_fd": report_w, "namespaced": namespaced,
        "hide": _paths_to_hide(limits.hide, workdir) if namespaced else [],
        "memory_bytes": limits.memory_bytes, "file_bytes": limits.file_bytes, "open_files": limits.open_files,
        "cpu_seconds": limits.cpu_seconds or math.ceil(limits.timeout) + 1,
    }
    argv = [*(_NAMESPACE_PREFIX if namespaced else []), _python(), "-I", "-S", "-c", _BOOTSTRAP]
    started = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=workdir, env={}, start_new_session=True, pass_fds=(report_w,))
    except OSError:
        os.close(report_r)
        os.close(report_w)
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    os.close(report_w)
    try:
        result = _supervise(proc, report_r, json.dumps(job).encode("utf-8"), limits, started)
    finally:
        if proc.returncode is None:
            _kill_group(proc)
        os.close(report_r)
        shutil.rmtree(workdir, ignore_errors=True)
    result.namespaced = namespaced
    return result


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the child leads its own session, so pgid == pid
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _supervise(proc: subprocess.Popen, report_r: int, job: bytes, limits: Limits, started: float) -> SandboxResult:
    """Feed the job, read the three pipes with caps until the program ends or the deadline passes."""
    deadline = started + limits.timeout
    assert proc.stdin and proc.stdout and proc.stderr
    try:
        proc.stdin.write(job)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    caps = {proc.stdout.fileno(): limits.max_output, proc.stderr.fileno(): limits.max_output,
            report_r: limits.max_reports}
    kept: dict[int, bytearray] = {fd: bytearray() for fd in caps}
    truncated: dict[int, bool] = {fd: False for fd in caps}
    sel = selectors.DefaultSelector()
    for fd in caps:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    timed_out = False
    exited_at: float | None = None
    while sel.get_map():
        now = time.monotonic()
        if proc.poll() is not None and exited_at is None:
            exited_at = now
            _kill_group(proc)  # leftovers would keep the pipes open
        if exited_at is None and now >= deadline:
            timed_out = True
            _kill_group(proc)
            exited_at = now
        # after the main process is gone, drain briefly: a setsid() escapee may hold a pipe
        if exited_at is not None and now >= min(deadline, exited_at + 0.5) and now > exited_at + 0.05:
            break
        for key, _ in sel.select(timeout=0.05):
            fd = key.fd
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                sel.unregister(fd)
                continue
            room = caps[fd] - len(kept[fd])
            if room > 0:
                kept[fd] += chunk[:room]
            if len(chunk) > room:
                truncated[fd] = True  # keep reading and discarding so the writer never blocks
    sel.close()
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    proc.stdout.close()
    proc.stderr.close()
    if proc.poll() is None:
        _kill_group(proc)
    reports: list[Any] = []
    for line in kept[report_r].decode("utf-8", "replace").splitlines():
        try:
            reports.append(json.loads(line))
        except ValueError:
            break  # a line cut by the cap or by the kill
    return SandboxResult(
        returncode=None if timed_out else proc.returncode,
        stdout=kept[out_fd].decode("utf-8", "replace"), stderr=kept[err_fd].decode("utf-8", "replace"),
        reports=reports, timed_out=timed_out, stdout_truncated=truncated[out_fd],
        stderr_truncated=truncated[err_fd], duration=time.monotonic() - started,
    )
