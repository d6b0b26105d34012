"""The child process that hosts CPython-on-WASI under wasmtime (run as a script; mlgrade itself
imports only RecordFeed from it, and it needs only the standard library and `wasmtime`).

sandbox.py starts it as `python -I -S wasm_host.py` in its own session with an empty
environment and sends one JSON job on stdin; it answers one JSON object on stdout and exits
with os._exit (wasmtime's runtime threads can panic during a normal interpreter shutdown).
In a batch it is forked instead from a zygote started the same way (hosts.py), which has
imported wasmtime once; the forked host then runs its one job exactly as above.

Layers, outside in: this process has rlimits (CPU seconds, file size, open files, no core
dump) and its parent kills its whole process group at the deadline. Inside it, each guest
program runs in its own wasmtime Store on its own Engine: fuel bounds its instructions, store
limits bound its memory, and a watchdog thread bumps the engine's epoch (which traps the
guest) on the wall-clock deadline, on the per-step deadline (reset whenever the guest writes a
line starting with its step marker) and when its work directory grows past the disk cap. The
guest sees only what is pre-opened: a fresh work directory at /tmp, the standard library at /usr
read-only and, when it has a feed, the items released so far at /feed read-only (RecordFeed); its
environment is exactly what the job gives.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any


def _limit(which: int, soft: int, hard: int | None = None) -> None:
    try:
        resource.setrlimit(which, (soft, soft if hard is None else hard))
    except (ValueError, OSError):
        pass


MAX_ENTRIES = 2000  # files and directories in a work dir: empty files cost inodes, not blocks
MAX_DEPTH = 64  # directories inside directories: no answer needs more, and deeper paths outgrow PATH_MAX
OVER = 1 << 62  # "infinitely much": past a bound, or not measurable


# One descriptor kept back for measuring the work dir: a guest's open files are this process's, and
# a guest that holds every one of them (RLIMIT_NOFILE) must not make the measurement fail, which
# counts as over the cap and would charge the candidate with a disk fault it did not commit.
_SPARE: list[int] = []
_SPARE_LOCK = threading.Lock()


def keep_spare_descriptor() -> None:
    if not _SPARE:
        _SPARE.append(os.open(os.devnull, os.O_RDONLY))


@contextlib.contextmanager
def _scandir(directory: str) -> Iterator[Any]:
    """os.scandir, falling back on the spare descriptor when the guest holds all the others."""
    try:
        listing = os.scandir(directory)
    except OSError as exc:
        if exc.errno not in (errno.EMFILE, errno.ENFILE):
            raise
        with _SPARE_LOCK:
            if not _SPARE:
                raise
            os.close(_SPARE.pop())
            try:
                with os.scandir(directory) as listing:
                    yield listing
            finally:
                try:
                    keep_spare_descriptor()
                except OSError:  # the guest took the slot back: the next look may fail (OVER)
                    pass
        return
    with listing:
        yield listing


def _dir_bytes(path: str) -> int:
    """Disk used under `path`; past MAX_ENTRIES entries or MAX_DEPTH levels, or when a directory
    cannot be read (a path too long to name), OVER. A loop over an explicit stack, never recursion
    (os.walk recurses: a tree 1,400 deep raised RecursionError and killed the watchdog)."""
    total, entries = 0, 0
    stack = [(path, 0)]
    while stack:
        directory, depth = stack.pop()
        if depth > MAX_DEPTH:
            return OVER
        try:
            with _scandir(directory) as listing:
                for entry in listing:
                    entries += 1
                    if entries > MAX_ENTRIES:
                        return OVER
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append((entry.path, depth + 1))
                        else:
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
                    except FileNotFoundError:  # the guest removed it meanwhile
                        pass
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError:
            return OVER
    return total


class RecordFeed:
    """Counts the guest's record lines (stdout lines that start with its marker) and, for each one,
    releases the next of its feed items: item k appears as the file `k` in a directory the guest
    sees read-only as /feed, and after the last item an empty file says there are no more. So the
    guest cannot read an item before it has written one record per item before it: a harness
    answering calls in lockstep gets each call's arguments only after answering the previous one.
    Files are written whole and renamed into place: a guest polling for one never reads half of it.
    Also imported by bwrap.py, which hosts native guests the same way."""

    def __init__(self, marker: bytes, items: list[bytes] | None = None, directory: str | None = None) -> None:
        self.marker, self.items, self.directory = marker, items or [], directory
        self.released = 0
        self._head: bytes | None = b""  # the start of the current line, while it may still become a marker
        # Every item is written now, beside the directory, and released by a rename: releasing
        # then needs no new file descriptor, which the guest (whose open files are ours) may
        # have used up.
        self._staged: list[str] = []
        if directory is not None:
            stage = directory.rstrip(os.sep) + ".stage"
            os.makedirs(stage, mode=0o700, exist_ok=True)
            for k, data in enumerate([*self.items, b""]):
                path = os.path.join(stage, str(k))
                with open(path, "wb") as f:
                    os.fchmod(f.fileno(), 0o640)  # whatever the umask: a bwrap guest reads it via its group
                    f.write(data)
                self._staged.append(path)

    def count(self, data: bytes) -> int:
        """How many record lines begin in `data` (lines may arrive split across writes)."""
        found = 0
        parts = data.split(b"\n")
        for i, part in enumerate(parts):
            if self._head is not None:
                self._head += part[: len(self.marker) - len(self._head)]
                if self._head == self.marker:
                    found += 1
                    self._head = None
                elif not self.marker.startswith(self._head):
                    self._head = None
            if i < len(parts) - 1:
                self._head = b""
        return found

    def release(self, n: int) -> None:
        for _ in range(n):
            if self.directory is None or self.released >= len(self._staged):
                return
            k = self.released
            os.rename(self._staged[k], os.path.join(self.directory, str(k)))
            self.released += 1


class _Capped:
    """Keeps the first `cap` bytes written; counts the rest. With a feed, each record line in what
    is written restarts the step timer and releases the next feed item."""

    def __init__(self, cap: int, feed: RecordFeed | None = None, on_record=None) -> None:
        self.cap, self.buf, self.dropped = cap, bytearray(), 0
        self.feed, self.on_record = feed, on_record

    def __call__(self, data) -> None:
        data = bytes(data)
        if self.feed is not None:
            found = self.feed.count(data)
            if found:
                self.feed.release(found)
                if self.on_record:
                    self.on_record()
        room = self.cap - len(self.buf)
        if room > 0:
            self.buf += data[:room]
        self.dropped += max(0, len(data) - max(room, 0))


def _run_one(wasmtime, module_path: str, stdlib_dir: str, spec: dict, limits: dict) -> dict:
    from wasmtime import Config, Engine, ExitTrap, Linker, Module, Store, WasiConfig

    started = time.monotonic()
    workdir = spec["workdir"]
    stdin_path = os.path.join(spec["iodir"], "stdin")
    with open(stdin_path, "wb") as f:
        f.write(base64.b64decode(spec.get("stdin_b64", "")))

    cfg = Config()
    cfg.consume_fuel = True
    cfg.epoch_interruption = True
    engine = Engine(cfg)
    module = Module.deserialize_file(engine, module_path)
    linker = Linker(engine)
    linker.define_wasi()

    # the step timer starts at the first marker: interpreter start-up and loading the code are
    # bounded by the whole run's deadline only
    state = {"step_at": None, "reason": None, "done": False}

    def step() -> None:
        state["step_at"] = time.monotonic()

    marker = spec.get("step_marker")
    feed = None
    if marker:
        items = [base64.b64decode(x) for x in spec.get("feed_b64", [])]
        feed = RecordFeed(marker.encode(), items, spec.get("feeddir") if "feed_b64" in spec else None)
    out = _Capped(limits["max_output"], feed, step)
    err = _Capped(limits["max_output"])

    wasi = WasiConfig()
    wasi.argv = ["python", "-I", "-S", "-c", spec["program"]]
    wasi.env = [list(kv) for kv in spec.get("env", [])]
    wasi.stdin_file = stdin_path
    wasi.stdout_custom = out
    wasi.stderr_custom = err
    wasi.preopen_dir(stdlib_dir, "/usr", False)
    wasi.preopen_dir(workdir, "/tmp", True)
    if feed is not None and feed.directory:
        wasi.preopen_dir(feed.directory, "/feed", False)

    store = Store(engine)
    store.set_fuel(int(limits["fuel"]))
    store.set_epoch_deadline(1)
    store.set_limits(memory_size=int(limits["memory_bytes"]))
    store.set_wasi(wasi)

    deadline = started + float(limits["timeout"])
    step_timeout = spec.get("step_timeout")

    def watchdog() -> None:
        last_disk = 0.0
        while not state["done"]:
            now = time.monotonic()
            reason = None
            if now >= deadline:
                reason = "timeout"
            elif step_timeout and state["step_at"] is not None and now - state["step_at"] > step_timeout:
                reason = "step-timeout"
            elif now - last_disk >= 0.05:
                last_disk = now
                try:
                    over = _dir_bytes(workdir) > limits["disk_bytes"]
                except Exception:  # noqa: BLE001 - a watchdog that dies lifts the cap: fail closed
                    over = True
                if over:
                    reason = "disk"
            if reason:
                state["reason"] = reason
                engine.increment_epoch()
                return
            time.sleep(0.005)

    guard = threading.Thread(target=watchdog, daemon=True)
    guard.start()
    exit_code: int | None = None
    trap = trap_kind = ""
    try:
        instance = linker.instantiate(store, module)
        instance.exports(store)["_start"](store)
        exit_code = 0
    except ExitTrap as e:
        exit_code = e.code
    except Exception as e:  # a Trap (fuel, epoch, stack, unreachable) or a wasmtime error
        full = str(e).strip()
        trap_lines = [line.strip() for line in full.splitlines() if line.strip()]
        trap = (trap_lines[-1] if trap_lines else type(e).__name__)[:300]
        trap_kind = full.lower()
    finally:
        state["done"] = True
    interrupted = state["reason"]
    if interrupted is None and trap:
        low = trap_kind
        if "fuel" in low:
            interrupted = "fuel"
        elif "stack" in low:
            interrupted = "stack"
        else:
            interrupted = "trap"
    try:
        fuel_used = int(limits["fuel"]) - store.get_fuel()
    except Exception:
        fuel_used = None
    disk = _safe_dir_bytes(workdir)
    if interrupted is None and disk > limits["disk_bytes"]:  # grown past the cap between two looks
        interrupted = "disk"
    return {
        "exit_code": exit_code, "interrupted": interrupted, "trap": trap,
        "stdout": out.buf.decode("utf-8", "replace"), "stdout_dropped": out.dropped,
        "stderr": err.buf.decode("utf-8", "replace"), "stderr_dropped": err.dropped,
        "fuel_used": fuel_used, "duration": round(time.monotonic() - started, 4),
        "disk_bytes": disk,
    }


def _safe_dir_bytes(workdir: str) -> int:
    try:
        return _dir_bytes(workdir)
    except Exception:  # noqa: BLE001 - only a figure for the report
        return OVER


def _compile(wasmtime, wasm: str, out: str) -> dict:
    from wasmtime import Config, Engine, Module

    cfg = Config()
    cfg.consume_fuel = True
    cfg.epoch_interruption = True
    started = time.monotonic()
    module = Module.from_file(Engine(cfg), wasm)
    data = module.serialize()
    tmp = f"{out}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, out)
    return {"compiled": out, "seconds": round(time.monotonic() - started, 3), "bytes": len(data)}


def main() -> None:
    job = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past RLIMIT_FSIZE fails (EFBIG) instead of killing us
    limits = job.get("limits", {})
    _limit(resource.RLIMIT_CORE, 0)
    if "cpu_seconds" in limits:
        _limit(resource.RLIMIT_CPU, int(limits["cpu_seconds"]), int(limits["cpu_seconds"]) + 1)
    if "file_bytes" in limits:
        _limit(resource.RLIMIT_FSIZE, int(limits["file_bytes"]))
    _limit(resource.RLIMIT_NOFILE, 256)
    keep_spare_descriptor()
    sys.path.insert(0, job["wasmtime_path"])
    import wasmtime

    if "compile" in job:
        result = _compile(wasmtime, job["compile"]["wasm"], job["compile"]["out"])
    else:
        runs: list[dict | None] = [None] * len(job["guests"])

        def go(i: int) -> None:
            try:
                runs[i] = _run_one(wasmtime, job["module"], job["stdlib_dir"], job["guests"][i], limits)
            except Exception as e:  # never let one guest's host-side failure hide the others
                runs[i] = {"exit_code": None, "interrupted": "host-error", "trap": f"{type(e).__name__}: {e}"[:300],
                           "stdout": "", "stderr": "", "stdout_dropped": 0, "stderr_dropped": 0,
                           "fuel_used": None, "duration": 0.0, "disk_bytes": 0}

        threads = [threading.Thread(target=go, args=(i,)) for i in range(len(runs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        result = {"guests": runs}
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()


def serve_one() -> None:
    """Run the job on stdin, answer on stdout, and exit (never returns)."""
    try:
        main()
    except BaseException as e:  # noqa: BLE001 - the parent reads this line, a traceback helps nobody
        sys.stdout.write(json.dumps({"host_error": f"{type(e).__name__}: {e}"[:500]}))
        sys.stdout.flush()
        os._exit(3)
    os._exit(0)


if __name__ == "__main__":
    serve_one()
