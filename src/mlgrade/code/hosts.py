"""Starting the sandbox host (wasm_host.py) for one job: cold, a new interpreter, or in a batch
warm, forked from a zygote (this file run as a script) that has imported wasmtime once.

Starting a host cold costs about 80 ms of CPU (the interpreter and the wasmtime import), about
half of what a short coding answer's run costs in all, and a batch runs two hosts per coding
answer. A forked host is still a process of its own for one job: its own session (the parent
kills its group at the deadline), its own rlimits, its own fresh wasm instances, its stdin,
stdout and stderr pipes of ours. The zygote holds nothing secret: it starts like a cold host,
`python -I -S` with an empty environment in an empty directory.

Whatever goes wrong with the zygote (it cannot start, it died) makes `Unavailable`: the host
is started cold, as before. Only the standard library here: the zygote runs this file.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

_HOST = Path(__file__).with_name("wasm_host.py")
_SELF = Path(__file__)
# How long the zygote may take to answer a request (a fork, or reaping a killed host: milliseconds
# even on a loaded machine). A zygote that does not answer (stopped, swapped out, stuck reaping)
# would otherwise hold every run of the batch past its deadline.
ASK_TIMEOUT = 10.0


class Unavailable(RuntimeError):
    """No warm start now; start the host cold."""


class Zygote:
    def __init__(self, wasmtime_path: str) -> None:
        self.wasmtime_path = wasmtime_path
        self.lock = threading.Lock()
        try:  # /tmp full or read-only: no warm start, but the cold one may still find room
            self.home = tempfile.mkdtemp(prefix="mlgrade-zygote-")
        except OSError as exc:
            raise Unavailable(str(exc)) from None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(_SELF), str(theirs.fileno()), wasmtime_path],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),), cwd=self.home, env={}, start_new_session=True)
        except OSError as exc:
            ours.close()
            os.rmdir(self.home)
            raise Unavailable(str(exc)) from None
        finally:
            theirs.close()
        self.sock = ours
        self.sock.settimeout(ASK_TIMEOUT)
        self.broken = False

    def _ask(self, request: dict, fds: list[int] = ()) -> dict:  # type: ignore[assignment]
        # A request that failed part-way (timed out, say) may be answered later: the next reply
        # read would be that one, so a zygote that failed once is not asked again.
        if self.broken:
            raise Unavailable("the warm host failed an earlier request")
        data = json.dumps(request).encode("utf-8")
        try:
            socket.send_fds(self.sock, [len(data).to_bytes(4, "big") + data], list(fds))
            head = self._read(4)
            return json.loads(self._read(int.from_bytes(head, "big")))
        except (OSError, EOFError, ValueError) as exc:
            self.broken = True
            raise Unavailable(f"the warm host is gone ({exc})") from None

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            part = self.sock.recv(n - len(data))
            if not part:
                raise EOFError("closed")
            data += part
        return data

    def run(self, job: bytes, cwd: str, timeout: float) -> tuple[bytes, bytes, int | None]:
        """Fork a host for `job` (run in `cwd`); its stdout, its stderr and its exit status. At the
        deadline its process group is killed and the stdout is empty, as with a cold host."""
        pipes = [os.pipe() for _ in range(3)]
        child = [pipes[0][0], pipes[1][1], pipes[2][1]]
        stdin, stdout, stderr = pipes[0][1], pipes[1][0], pipes[2][0]
        try:
            with self.lock:
                answer = self._ask({"op": "run", "cwd": cwd}, child)
        except Unavailable:
            for fd in (stdin, stdout, stderr):
                os.close(fd)
            raise
        finally:
            for fd in child:
                os.close(fd)
        pid = answer.get("pid")
        if not isinstance(pid, int):
            for fd in (stdin, stdout, stderr):
                os.close(fd)
            raise Unavailable(str(answer.get("error") or "no host was forked"))
        try:
            out, err, finished = _exchange(stdin, stdout, stderr, job, time.monotonic() + timeout)
            if not finished:
                out, err = b"", b"the sandbox host did not finish in time and was killed"
        finally:
            _kill_group(pid)
            with self.lock:
                try:
                    status = self._ask({"op": "reap", "pid": pid}).get("status")
                except Unavailable:
                    status = None
        return out, err, status

    def close(self) -> None:
        self.sock.close()  # the zygote exits when its end reads EOF
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _kill_group(self.proc.pid)
            self.proc.wait()
        try:
            os.rmdir(self.home)
        except OSError:
            pass


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # a host leads its own session, so pgid == pid
    except (ProcessLookupError, PermissionError):
        pass


def _exchange(stdin: int, stdout: int, stderr: int, job: bytes, deadline: float) -> tuple[bytes, bytes, bool]:
    """Write the job, read both outputs until they close; (stdout, stderr, finished in time).
    Closes the three descriptors."""
    sel = selectors.DefaultSelector()
    chunks: dict[int, list[bytes]] = {stdout: [], stderr: []}
    pending = memoryview(job)
    os.set_blocking(stdin, False)
    sel.register(stdin, selectors.EVENT_WRITE)
    sel.register(stdout, selectors.EVENT_READ)
    sel.register(stderr, selectors.EVENT_READ)
    open_fds = {stdin, stdout, stderr}
    try:
        while chunks.keys() & open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                return b"", b"", False
            for key, _ in sel.select(left):
                fd = key.fd
                if fd == stdin:
                    try:
                        pending = pending[os.write(stdin, pending[:65536]):]
                    except BrokenPipeError:
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(stdin)
                        os.close(stdin)
                        open_fds.discard(stdin)
                    continue
                data = os.read(fd, 65536)
                if data:
                    chunks[fd].append(data)
                else:
                    sel.unregister(fd)
                    os.close(fd)
                    open_fds.discard(fd)
        return b"".join(chunks[stdout]), b"".join(chunks[stderr]), True
    finally:
        sel.close()
        for fd in open_fds:
            os.close(fd)


_zygotes: dict[str, Zygote] = {}
_zygotes_lock = threading.Lock()
_zygotes_started: list[bool] = []


def run(job: dict, cwd: str, timeout: float) -> tuple[bytes, bytes, int | None]:
    """Run one host job from this process's zygote for the job's wasmtime (started on first use,
    started again once if it died). Raises Unavailable when there is none."""
    path = str(job["wasmtime_path"])
    data = json.dumps(job).encode("utf-8")
    for attempt in range(2):
        with _zygotes_lock:
            zygote = _zygotes.get(path)
            if zygote is None:
                if not _zygotes_started:
                    atexit.register(close_all)  # a batch closes its own; this is for any other caller
                    _zygotes_started.append(True)
                zygote = _zygotes[path] = Zygote(path)
        try:
            return zygote.run(data, cwd, timeout)
        except Unavailable:
            with _zygotes_lock:
                if _zygotes.get(path) is zygote:
                    del _zygotes[path]
            zygote.close()
            if attempt:
                raise
    raise Unavailable("unreachable")


def close_all() -> None:
    """Stop the zygotes (the end of a batch)."""
    with _zygotes_lock:
        zygotes = list(_zygotes.values())
        _zygotes.clear()
    for zygote in zygotes:
        zygote.close()


def spawn(job: dict, timeout: float, workdir: str, *, warm: bool = False) -> tuple[bytes, bytes, int | None]:
    """Run the host for `job` in `workdir` (removed when done): its stdout, stderr and exit
    status. `warm`: forked from this process's zygote when it can be, else started cold. Raises
    OSError when no host could be started (nothing ran)."""
    try:
        if warm:
            try:
                return run(job, workdir, timeout)
            except Unavailable:
                pass  # started cold below
        return _spawn_cold(job, timeout, workdir)
    finally:
        _remove(workdir)


def _remove(workdir: str) -> None:
    from .tree import remove_tree

    remove_tree(workdir)


def _spawn_cold(job: dict, timeout: float, workdir: str) -> tuple[bytes, bytes, int | None]:
    proc = subprocess.Popen([sys.executable, "-I", "-S", str(_HOST)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workdir, env={},
                            start_new_session=True)
    try:
        out, err = proc.communicate(json.dumps(job).encode("utf-8"), timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = b"", b"the sandbox host did not finish in time and was killed"
    finally:
        _kill_group(proc.pid)
        proc.wait()
    return out, err, proc.returncode


def _send(sock, obj: dict) -> None:
    data = json.dumps(obj).encode("utf-8")
    sock.sendall(len(data).to_bytes(4, "big") + data)


def _recv_exact(sock, n: int) -> bytes:
    data = b""
    while len(data) < n:
        part = sock.recv(n - len(data))
        if not part:
            raise EOFError
        data += part
    return data


def zygote(control: int, wasmtime_path: str) -> None:
    """The zygote's side (Zygote is the other end): wasmtime is imported here once,
    and each job gets a host forked from this process, which then runs exactly as a host started
    cold: its own process, session and rlimits, its stdin/stdout/stderr the pipes the parent sent
    with the request. Only the start-up (the interpreter, importing wasmtime: half of a short
    run's CPU) is shared. Requests: {"op": "run", "cwd"} with three descriptors, answered with
    the host's pid; {"op": "reap", "pid"} once the parent has killed its group, answered with its
    exit status (so a pid is never reused while the parent may still signal it). Exits when the
    parent closes its end."""
    sys.path[:0] = [wasmtime_path, str(_HOST.parent)]
    import wasm_host  # the host's code, as a cold host runs it
    import wasmtime  # noqa: F401 - loaded once here, found loaded by every forked host
    from wasmtime import Config, Engine, ExitTrap, Linker, Module, Store, WasiConfig  # noqa: F401

    sock = socket.socket(fileno=control)
    while True:
        try:
            head, fds, _, _ = socket.recv_fds(sock, 4, 3)
            if not head:
                break
            if len(head) < 4:
                head += _recv_exact(sock, 4 - len(head))
            req = json.loads(_recv_exact(sock, int.from_bytes(head, "big")))
        except (OSError, EOFError, ValueError):
            break
        if req.get("op") == "reap":
            try:
                _, status = os.waitpid(int(req["pid"]), 0)
                _send(sock, {"status": os.waitstatus_to_exitcode(status)})
            except ChildProcessError:
                _send(sock, {"status": None})
            continue
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            _send(sock, {"error": "a run request needs stdin, stdout and stderr"})
            continue
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                for target, fd in enumerate(fds):
                    os.dup2(fd, target)
                for fd in fds:
                    if fd > 2:
                        os.close(fd)
                sock.close()
                os.chdir(req["cwd"])
            except BaseException:  # noqa: BLE001 - the parent sees no answer: a host failure
                os._exit(3)
            wasm_host.serve_one()
        for fd in fds:
            os.close(fd)
        _send(sock, {"pid": pid})


if __name__ == "__main__":
    zygote(int(sys.argv[1]), sys.argv[2])
    os._exit(0)
