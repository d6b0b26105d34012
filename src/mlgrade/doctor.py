"""`mlgrade doctor` as a library: what configuration is in effect and why, whether the endpoint
answers, what it accepts, where the store is, and one line saying what to do next.

The live check makes at most: GET /models, the capability probe (only when nothing is cached
or `refresh`), and one tiny structured request under the detected capabilities. Each step is
timed. Doctor never retries (a user running it wants the truth fast) and never prints the key.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .errors import redact, redact_url

if TYPE_CHECKING:
    from .config import Settings

MODELS_TIMEOUT_S = 15.0
SECRET_SETTINGS = frozenset({"api_key"})
_HTTP_STATUS = re.compile(r"HTTP (\d{3})")


@dataclass
class Check:
    """One live step. status: ok, warn (works, but look), fail, or skipped."""

    name: str
    status: str
    detail: str = ""
    latency_ms: int | None = None
    http_status: int | None = None


@dataclass
class DoctorReport:
    mode: str                                  # llm | offline
    config: list[dict[str, Any]]               # name, value, source (the key's value is never included)
    key_set: bool
    base_url: str
    model: str
    checks: list[Check] = field(default_factory=list)
    capabilities: dict[str, Any] | None = None
    capabilities_source: str | None = None     # cached | detected
    store: dict[str, Any] = field(default_factory=dict)
    sandbox: dict[str, Any] = field(default_factory=dict)  # how candidates' code runs (or why it cannot)
    benchmark: dict[str, Any] = field(default_factory=dict)  # the configured grader's figure on the built-in answers
    verdict: str = ""
    ok: bool = True
    exit_code: int = 0                          # 0 ready, 1 the endpoint fails, 2 configuration error

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The tiny structured reply doctor asks for: small enough for any model to fill. No docstring on
# purpose: pydantic would send it as the schema's description, and small models copy it.
class _DoctorProbe(BaseModel):
    ok: bool
    word: str


PROBE_MESSAGES = [
    {"role": "system", "content": "You answer in JSON only."},
    {"role": "user", "content": 'Reply with {"ok": true, "word": "ready"}.'},
]


# --------------------------------------------------------------------------- config and store


def config_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every setting with its value and where it came from; the key appears only as set / not set."""
    rows = []
    for name, source in settings.sources.items():
        value = getattr(settings, name, None)
        if name in SECRET_SETTINGS:
            value = "set" if value else "not set"
        elif isinstance(value, str):
            value = redact(value)
        elif value is not None and not isinstance(value, (bool, int, float, str)):
            value = str(value)
        rows.append({"name": name, "value": value, "source": source})
    return rows


def store_info(settings: Settings) -> dict[str, Any]:
    """Where the store is and its schema version. A store that does not exist yet is reported,
    not created (it is made on first use); a data folder that cannot be made, or a damaged
    database, is reported with the same line the other commands print."""
    from .store import SCHEMA_VERSION, DamagedStoreError, Store, home_label

    path = settings.db_path
    info: dict[str, Any] = {"path": str(path), "exists": path.is_file(), "schema_version": None,
                            "expected_schema_version": SCHEMA_VERSION, "ok": True, "problem": None, "damaged": False}
    home, label = settings.home, home_label(settings)
    if home.exists() and not home.is_dir():
        info.update(ok=False, problem=f"{label} is a file, not a folder: point it at a folder mlgrade can create")
        return info
    if not home.exists():
        problem = _creatable(home)
        if problem is not None:
            info.update(ok=False, problem=f"{label} cannot be created ({problem}): point it at a folder mlgrade can write")
        return info
    if path.exists() and not path.is_file():
        info.update(ok=False, problem=f"the history database at {path} is not a file: move it away")
        return info
    if not info["exists"]:
        return info
    try:
        with Store(path) as store:
            info["schema_version"] = store.schema_version()
            row = store.db.execute("PRAGMA quick_check(1)").fetchone()  # doctor may take the time to read every page
            if row is not None and row[0] != "ok":
                raise DamagedStoreError(path, str(row[0]))
    except DamagedStoreError as exc:
        info.update(ok=False, damaged=True, problem=str(exc))
        return info
    except Exception as exc:  # sqlite3.Error, PermissionError…: report, do not crash
        info.update(ok=False, problem=f"cannot open the store: {exc}")
        return info
    if info["schema_version"] > SCHEMA_VERSION:
        info.update(ok=False, problem=f"the store's schema version {info['schema_version']} is newer than this "
                                      f"mlgrade knows ({SCHEMA_VERSION}): upgrade mlgrade")
    return info


def benchmark_info(settings: Settings, store: dict[str, Any]) -> dict[str, Any]:
    """The configured grader's figure on the built-in expert answers, with doctor's `line`. A store
    that does not exist yet is not created for it: nothing was measured."""
    from . import measured

    setting = measured.setting_for(settings)
    found = measured.configured_figure(settings) if store.get("exists") and store.get("ok") else None
    m = found[1] if found else None
    return {**measured.figure_dict(setting, m), "line": measured.figure_line(setting, m)}


def sandbox_info(settings: Settings | None = None) -> dict[str, Any]:
    """Which sandbox runs candidates' code and why, or why none can (then code is not run), with
    a one-line `summary`. Cheap: it never compiles the module."""
    from .code.sandbox import sandbox_status

    info = sandbox_status(settings.sandbox if settings is not None else None).to_dict()
    if not info["available"]:
        info["summary"] = (f"none: {info['reason']}; answers to coding questions are graded from their text only "
                           "(code not run: no sandbox available)")
    elif info["mode"] != "wasm":
        info["summary"] = f"{info['mode']}: {info['reason']}"
    elif info["compiled"]:
        cost = f" (the first-run compile took {info['compile_seconds']:.1f} s)" if info.get("compile_seconds") else ""
        info["summary"] = f"wasm: {info['reason']}; compiled module cached at {info['cache_path']}{cost}"
    elif info.get("cache_problem"):
        info["summary"] = (f"wasm: {info['reason']}; the cached compiled module at {info['cache_path']} fails its "
                           f"check ({info['cache_problem']}): it is never loaded, and the next coding-question grade "
                           "compiles it again (several seconds)")
    else:
        info["summary"] = (f"wasm: {info['reason']}; not compiled yet: the first coding-question grade compiles "
                           "CPython to native code once (several seconds) and caches it")
    return info


def _creatable(folder: Path) -> str | None:
    """None when `folder` (missing) could be made; else why not. It is made and removed again,
    the only sure test (permissions, read-only or pseudo filesystems like /proc)."""
    missing = [folder, *(p for p in folder.parents if not p.exists())]
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        return exc.strerror or str(exc)
    for made in missing:  # deepest first
        try:
            made.rmdir()
        except OSError:
            break
    return None


def reset_damaged_store(settings: Settings) -> str | None:
    """Move a damaged store aside (`mlgrade.db.damaged-<time>`, with its -wal/-shm) so a fresh
    one starts on next use. Returns the new path, or None when the store is not damaged
    (a healthy store is never moved)."""
    from .store import move_aside

    info = store_info(settings)
    if not info.get("damaged"):
        return None
    return str(move_aside(settings.db_path))


# --------------------------------------------------------------------------- live checks


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


async def check_models(settings: Settings) -> tuple[Check, list[str]]:
    """GET /models: reachable? authorised? is the configured model listed?"""
    import httpx

    from .graders.client import PLACEHOLDER_KEY, endpoint_url

    url = f"{endpoint_url(settings)}/models"
    headers = {"Authorization": f"Bearer {settings.api_key or PLACEHOLDER_KEY}"}
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=min(settings.timeout, MODELS_TIMEOUT_S)) as http:
            resp = await http.get(url, headers=headers)
    except httpx.TimeoutException:
        return Check("models", "fail", f"GET {url} timed out", _ms(started)), []
    except httpx.HTTPError as exc:
        return Check("models", "fail", f"cannot connect to {url} ({exc.__class__.__name__}: {exc})", _ms(started)), []
    latency = _ms(started)
    if resp.status_code != 200:
        status = "warn" if resp.status_code in (404, 405) else "fail"  # some servers have no /models
        return Check("models", status, f"GET {url} -> HTTP {resp.status_code}", latency, resp.status_code), []
    try:
        ids = [str(m.get("id")) for m in resp.json().get("data", []) if isinstance(m, dict)]
    except (ValueError, AttributeError):
        return Check("models", "warn", "GET /models replied with something that is not a model list", latency, 200), []
    if settings.model in ids:
        return Check("models", "ok", f"{len(ids)} model(s); {settings.model!r} is listed", latency, 200), ids
    shown = ", ".join(ids[:5]) + (" …" if len(ids) > 5 else "")
    fix = f"; to grade with {'it' if len(ids) == 1 else 'one of them'}, set MLGRADE_MODEL={ids[0]}" if ids else ""
    return Check("models", "warn", f"{settings.model!r} is not listed (served: {shown or 'none'}){fix}", latency, 200), ids


async def check_capabilities(settings: Settings, endpoint: Any, refresh: bool) -> tuple[Check, dict[str, Any] | None, str | None]:
    from .errors import GraderFailure
    from .graders.structured import detect_capabilities

    cached = None if refresh or not settings.cache_capabilities else endpoint.store.capabilities_get(endpoint.base_url, endpoint.model)
    started = time.perf_counter()
    try:
        caps = await detect_capabilities(settings, endpoint.store, refresh=refresh, endpoint=endpoint)
    except GraderFailure as failure:
        match = _HTTP_STATUS.search(failure.reason)
        return (Check("capabilities", "fail", failure.reason, _ms(started), int(match.group(1)) if match else None),
                None, None)
    source = "cached" if cached else "detected"
    return Check("capabilities", "ok", f"{describe_capabilities(caps)} ({source})", _ms(started)), caps, source


async def check_structured(settings: Settings, endpoint: Any, caps: dict[str, Any]) -> Check:
    """One tiny request exactly as grading sends them (same format, seed, temperature)."""
    from .graders.client import EndpointError, chat
    from .graders.structured import InvalidReply, parse_json_reply, strict_schema

    body = endpoint.request_body([dict(m) for m in PROBE_MESSAGES], strict_schema(_DoctorProbe), "doctor_probe", caps)
    body["max_tokens"] = 64  # bounded even for a model that rambles in plain mode
    started = time.perf_counter()
    try:
        reply = await chat(endpoint.client, body)
    except EndpointError as exc:
        return Check("structured request", "fail", exc.message, _ms(started), exc.status)
    latency = _ms(started)
    try:
        parse_json_reply(_DoctorProbe, reply.content)
    except InvalidReply as exc:
        return Check("structured request", "warn", f"answered, but the reply did not validate: {exc}", latency, 200)
    tokens = reply.usage.get("output_tokens") or 0
    return Check("structured request", "ok", f"valid JSON in {latency} ms ({tokens} tokens out)", latency, 200)


def describe_capabilities(caps: dict[str, Any]) -> str:
    return (f"response_format={caps.get('response_format')}, seed {'accepted' if caps.get('seed') else 'not sent'}, "
            f"temperature {'accepted' if caps.get('temperature') else 'not sent'}")


# --------------------------------------------------------------------------- verdict


def one_line(text: str, limit: int = 200) -> str:
    """Server errors span lines (llama.cpp sends a validation report with a traceback): one line, cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _failure_verdict(check: Check, settings: Settings) -> str:
    detail, status = check.detail, check.http_status
    where = settings.base_url or "the OpenAI API"
    if status in (401, 403):
        return f"{status} from the endpoint: check OPENAI_API_KEY"
    if status is None and "no valid reply" in detail:  # it answered, but never with usable JSON
        return _invalid_json_verdict(settings)
    if status == 404:
        return f"404 from {where}: check OPENAI_BASE_URL (it usually ends in /v1) and MLGRADE_MODEL ({settings.model!r})"
    if status == 429:
        return "429 from the endpoint: rate limited or out of quota; check the account's limits and billing"
    if "timed out" in detail:
        return f"{where} did not answer in time: check the server is up, or raise MLGRADE_TIMEOUT (now {settings.timeout:g}s)"
    if "connect" in detail:
        return _connect_verdict(settings)
    if status is not None and status >= 500:
        return f"the endpoint failed with HTTP {status} on a request mlgrade needs: {one_line(detail, 160)}"
    return f"{check.name} failed: {one_line(detail) if detail else 'no detail'}"


def _connect_verdict(settings: Settings) -> str:
    """What to do when nothing answered depends on what was asked: a local server is probably not
    running; the OpenAI API (or another remote endpoint) is probably out of reach from here."""
    from urllib.parse import urlsplit

    if not settings.base_url:
        return ("cannot reach the OpenAI API (api.openai.com): check the network connection and any proxy "
                "(HTTPS_PROXY); once it is reachable, OPENAI_API_KEY is checked; or use --grader offline")
    host = (urlsplit(settings.base_url).hostname or "").lower()
    if host in ("localhost", "::1", "0.0.0.0") or host.startswith("127."):
        return f"nothing answers at {settings.base_url}: start the local server, or fix OPENAI_BASE_URL"
    return (f"cannot connect to {settings.base_url}: check the address in OPENAI_BASE_URL, the network and any "
            "proxy (HTTPS_PROXY)")


def _invalid_json_verdict(settings: Settings) -> str:
    return (f"the endpoint works but {settings.model!r} did not return valid JSON to a tiny request: "
            "expect grader_error outcomes; try a larger model")


def verdict_for(report: DoctorReport, settings: Settings) -> tuple[str, bool, int]:
    if not report.store.get("ok", True):
        return f"store problem: {report.store['problem']}", False, 2
    if report.mode == "offline":
        if settings.grader == "offline":
            return "offline grader selected (MLGRADE_GRADER/--grader offline): no endpoint is used", True, 0
        return ("offline mode: no OPENAI_API_KEY or OPENAI_BASE_URL is set, so answers are graded offline; "
                "set one of them to grade with an LLM"), True, 0
    if not report.key_set and not settings.base_url:
        return "the llm grader is selected but no OPENAI_API_KEY or OPENAI_BASE_URL is set: set one, or use --grader offline", False, 2
    failed = next((c for c in report.checks if c.status == "fail"), None)
    if failed is not None:
        return _failure_verdict(failed, settings), False, 1
    structured = next((c for c in report.checks if c.name == "structured request"), None)
    if structured is not None and structured.status == "warn":
        return _invalid_json_verdict(settings), False, 1
    if not report.checks:
        return "configuration looks complete (live check skipped)", True, 0
    listed = next((c for c in report.checks if c.name == "models"), None)
    note = f"; note: {listed.detail}" if listed is not None and listed.status == "warn" else ""
    caps = report.capabilities or {}
    return f"ready: grading with {settings.model} at {report.base_url} using response_format={caps.get('response_format')}{note}", True, 0


# --------------------------------------------------------------------------- entry points


async def arun_doctor(settings: Settings, *, live: bool = True, refresh: bool = False, store: Any = None) -> DoctorReport:
    from .graders.client import endpoint_url

    report = DoctorReport(mode=settings.grader_kind, config=config_rows(settings), key_set=bool(settings.api_key),
                          base_url=redact_url(endpoint_url(settings)) or "", model=settings.model)
    report.store = store_info(settings)
    report.sandbox = sandbox_info(settings)
    report.benchmark = benchmark_info(settings, report.store)
    configured = bool(settings.api_key or settings.base_url)
    if live and report.mode == "llm" and configured and report.store["ok"]:
        await _live(report, settings, refresh, store)
        report.store = store_info(settings)  # the capability cache may have just created it
    report.verdict, report.ok, report.exit_code = verdict_for(report, settings)
    # a base URL with user:pass@ or ?token= and an error echoing the key are shown without them
    report.verdict = redact(report.verdict) or ""
    for check in report.checks:
        check.detail = redact(check.detail) or ""
    return report


async def _live(report: DoctorReport, settings: Settings, refresh: bool, store: Any) -> None:
    from .graders.structured import Endpoint, RetryPolicy

    models, _ = await check_models(settings)
    report.checks.append(models)
    if models.status == "fail" and (models.http_status in (401, 403) or models.http_status is None):
        return  # unreachable or unauthorised: the chat requests would only repeat it
    endpoint = Endpoint(settings, store=store, policy=RetryPolicy(max_attempts=1))
    try:
        caps_check, caps, source = await check_capabilities(settings, endpoint, refresh)
        report.checks.append(caps_check)
        report.capabilities, report.capabilities_source = caps, source
        if caps is not None:
            report.checks.append(await check_structured(settings, endpoint, caps))
    finally:
        await endpoint.aclose()


def run_doctor(settings: Settings, *, live: bool = True, refresh: bool = False, store: Any = None) -> DoctorReport:
    """Check the configuration (and with `live`, the endpoint). Never raises for a failing
    endpoint: the report's `verdict` says what is wrong and what to do."""
    return asyncio.run(arun_doctor(settings, live=live, refresh=refresh, store=store))
