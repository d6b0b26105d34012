"""A small OpenAI-compatible chat server on 127.0.0.1 for tests, demos and benchmarks.

Standard library only. It answers POST /v1/chat/completions with a reply that fits the
request's JSON schema (from response_format, or from the schema written in the system prompt
in json_object / plain mode), and GET /v1/models. It can misbehave on purpose:

- `latency`: seconds to sleep before answering (in-flight requests are counted: `max_in_flight`)
- `script`: a list of responses served first, in order, one per request: "429", "500",
  "malformed", "invalid" (valid JSON, wrong shape), "401", "404", "timeout" (sleeps
  `timeout_sleep`), or a (status, body_dict, headers_dict) tuple
- `p429`, `p500`, `pmalformed`: random injection rates after the script (seeded `rng_seed`)
- `retry_after`: Retry-After seconds sent with injected 429s and 500s (None: no header)
- `reject_json_schema`: answer a json_schema request with llama.cpp's 400;
  `reject_seed` / `reject_temperature`: 400 when those parameters are present
- `responder(body) -> dict | str`: replace the default reply content entirely
- prompt caching is imitated: a system message seen before counts as cached tokens

In tests:   with FakeOpenAIServer(latency=0.01, script=["429"]) as srv: srv.base_url ...
From a shell: python tests/fake_openai_server.py --port 8765 --p429 0.2 --pmalformed 0.1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import signal
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_MARKER = re.compile(r"<answer-([0-9a-f]+)>\n(.*)\n</answer-\1>", re.DOTALL)


def rough_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _answer_of(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages", [])):
        if m.get("role") == "user":
            found = _MARKER.search(m.get("content") or "")
            if found:
                return found.group(2)
    return ""


def _schema_of(body: dict[str, Any]) -> dict[str, Any] | None:
    rf = body.get("response_format") or {}
    if rf.get("type") == "json_schema":
        return rf["json_schema"]["schema"]
    if rf.get("type") == "json_object" and "schema" in rf:
        return rf["schema"]
    for m in body.get("messages", []):
        if m.get("role") == "system" and "JSON Schema" in (m.get("content") or ""):
            text = m["content"]
            start = text.rfind("\n{")
            try:
                return json.loads(text[start + 1:])
            except (ValueError, IndexError):
                return None
    return None


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


_FILLER = {"and", "the", "for", "with", "from", "into", "when", "what", "how", "why", "use", "uses", "its"}
_MISCONCEPTION_LINE = re.compile(r"^- `([a-z0-9-]+)`: (.+)$", re.MULTILINE)


def _content_words(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 4 and w not in _FILLER}


def _misconceptions(body: dict[str, Any], answer: str) -> list[dict[str, str]]:
    """Rubric misconceptions (read from the system prompt) whose claim's words mostly occur in
    one sentence of the answer."""
    system = next((m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "system"), "")
    section = system.split("## Known misconceptions", 1)[1].split("\n## ", 1)[0] if "## Known misconceptions" in system else ""
    found = []
    for mid, claim in _MISCONCEPTION_LINE.findall(section):
        words = _content_words(claim)
        for sentence in _sentences(answer):
            if words and len(words & _content_words(sentence)) >= 0.75 * len(words):
                found.append({"id": mid, "claim": claim, "evidence": sentence})
                break
    return found


def grade_like_reply(schema: dict[str, Any], answer: str, body: dict[str, Any] | None = None) -> Any:
    """A plausible instance of the schema. For a grading schema: a key point whose id words
    (first five letters) appear in a sentence of the answer is covered, quoting that sentence."""

    def fill(node: dict[str, Any], name: str = "") -> Any:
        kind = node.get("type")
        if "enum" in node:
            return node["enum"][0]
        if kind == "object":
            props = node.get("properties", {})
            if set(props) == {"status", "evidence", "comment"}:
                return _verdict(name)
            return {k: fill(v, k) for k, v in props.items()}
        if kind == "array":
            if name == "strengths":
                return ["Answers the question directly."]
            if name == "improvements":
                return ["Say how you would set the validation details in practice."]
            if name == "misconceptions" and body is not None:
                return _misconceptions(body, answer)
            return []
        if kind == "boolean":
            return True
        if kind in ("integer", "number"):
            return 0
        if name == "follow_up":
            return "How would you check that this works on your own data?"
        return ""

    def _verdict(kp_id: str) -> dict[str, str]:
        stems = [w[:5] for w in kp_id.split("-") if len(w) >= 3 and w not in _FILLER]
        for sentence in _sentences(answer):
            low = sentence.lower()
            if stems and any(s in low for s in stems):
                return {"status": "covered", "evidence": sentence, "comment": "Stated clearly."}
        return {"status": "missing", "evidence": "", "comment": "Not addressed."}

    return fill(schema)


class FakeOpenAIServer:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0, script: list[Any] | None = None,
                 p429: float = 0.0, p500: float = 0.0, pmalformed: float = 0.0, retry_after: float | None = 0.05,
                 reject_json_schema: bool = False, reject_seed: bool = False, reject_temperature: bool = False,
                 responder: Callable[[dict[str, Any]], Any] | None = None, timeout_sleep: float = 5.0,
                 rng_seed: int = 0, model: str | None = None):
        self.latency, self.script = latency, list(script or [])
        self.p429, self.p500, self.pmalformed, self.retry_after = p429, p500, pmalformed, retry_after
        self.reject_json_schema, self.reject_seed, self.reject_temperature = reject_json_schema, reject_seed, reject_temperature
        self.responder, self.timeout_sleep, self.model = responder, timeout_sleep, model
        self.rng = random.Random(rng_seed)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._seen_prefixes: set[str] = set()
        self.httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ behaviour

    def _next_fault(self) -> Any:
        with self.lock:
            if self.script:
                return self.script.pop(0)
            roll = self.rng.random()
        if roll < self.p429:
            return "429"
        if roll < self.p429 + self.p500:
            return "500"
        if roll < self.p429 + self.p500 + self.pmalformed:
            return "malformed"
        return None

    def respond(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        fault = self._next_fault()
        if isinstance(fault, tuple):
            status, payload, *rest = fault
            return status, payload, (rest[0] if rest else {})
        if fault == "429":
            headers = {"retry-after": str(self.retry_after)} if self.retry_after is not None else {}
            return 429, _error("Rate limit reached, please retry", "rate_limit_exceeded"), headers
        if fault == "500":
            headers = {"retry-after": str(self.retry_after)} if self.retry_after is not None else {}
            return 500, _error("The server had an error", "server_error"), headers
        if fault == "401":
            return 401, _error("Incorrect API key provided", "invalid_api_key"), {}
        if fault == "404":
            return 404, _error(f"The model `{body.get('model')}` does not exist", "model_not_found"), {}
        if fault == "timeout":
            time.sleep(self.timeout_sleep)
        rf = (body.get("response_format") or {}).get("type")
        if self.reject_json_schema and rf == "json_schema":
            return 400, _error('response_format type must be one of "text" or "json_object"', "invalid_request"), {}
        if self.reject_seed and "seed" in body:
            return 400, _error("Unrecognized request argument supplied: seed", "invalid_request"), {}
        if self.reject_temperature and "temperature" in body:
            return 400, _error("Unsupported value: 'temperature' does not support 0 with this model.", "unsupported_value"), {}
        if fault == "malformed":
            content = '{"key_points": {"oops": '  # cut-off JSON
        elif fault == "invalid":
            content = json.dumps({"hello": "world"})
        elif self.responder is not None:
            out = self.responder(body)
            content = out if isinstance(out, str) else json.dumps(out)
        else:
            schema = _schema_of(body)
            content = json.dumps(grade_like_reply(schema, _answer_of(body), body) if schema else {"ok": True})
        return 200, self._completion(body, content), {}

    def _completion(self, body: dict[str, Any], content: str) -> dict[str, Any]:
        messages = body.get("messages", [])
        prompt_text = "".join(m.get("content") or "" for m in messages)
        system = messages[0].get("content", "") if messages and messages[0].get("role") == "system" else ""
        key = hashlib.sha256(system.encode()).hexdigest()
        with self.lock:
            cached = rough_tokens(system) if system and key in self._seen_prefixes else 0
            self._seen_prefixes.add(key)
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": self.model or body.get("model") or "fake-llm",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": rough_tokens(prompt_text), "completion_tokens": rough_tokens(content),
                          "total_tokens": rough_tokens(prompt_text) + rough_tokens(content),
                          "prompt_tokens_details": {"cached_tokens": cached}}}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": server.model or "fake-llm", "object": "model"}]})
                else:
                    self._send(404, _error("not found", "not_found"))

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._send(400, _error("invalid JSON body", "invalid_request"))
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, _error("not found", "not_found"))
                    return
                with server.lock:
                    server.requests.append(body)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if server.latency:
                        time.sleep(server.latency)
                    status, payload, headers = server.respond(body)
                    with server.lock:
                        server.statuses.append(status)
                    self._send(status, payload, headers)
                finally:
                    with server.lock:
                        server.in_flight -= 1

        return Handler


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


def main() -> None:
    ap = argparse.ArgumentParser(description="A fake OpenAI-compatible chat server on 127.0.0.1.")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--p429", type=float, default=0.0)
    ap.add_argument("--p500", type=float, default=0.0)
    ap.add_argument("--pmalformed", type=float, default=0.0)
    ap.add_argument("--retry-after", type=float, default=0.2)
    ap.add_argument("--reject-json-schema", action="store_true")
    ap.add_argument("--script", default="", help="comma-separated first replies, e.g. 429,500,malformed,401")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    srv = FakeOpenAIServer(port=args.port, latency=args.latency, p429=args.p429, p500=args.p500,
                           pmalformed=args.pmalformed, retry_after=args.retry_after,
                           reject_json_schema=args.reject_json_schema, rng_seed=args.seed,
                           script=[x for x in args.script.split(",") if x])
    print(f"fake OpenAI server on {srv.base_url}  (Ctrl-C to stop)", flush=True)

    def _stop(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)  # `kill PID` ends it as cleanly as Ctrl-C
    try:
        srv.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.httpd.server_close()
        print(f"served {len(srv.requests)} requests, max in flight {srv.max_in_flight}", flush=True)


if __name__ == "__main__":
    main()
