"""A loopback imitation of the few OpenAI file and batch endpoints `--provider-batch` uses.

POST /v1/files (multipart upload), POST /v1/batches, GET /v1/batches/{id},
GET /v1/files/{id}/content. A batch stays `in_progress` until `finish()` is called; then each
request is answered like tests/fake_openai_server.py answers a chat request (a reply that fits
the request's schema), except for scripted faults by custom_id:

- `fail`: the request failed (a line in the error file, HTTP 500)
- `malformed`: a 200 whose content is cut-off JSON
- `drop`: never answered (as when a batch expires)
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fake_openai_server import _answer_of, _schema_of, grade_like_reply, rough_tokens


class FakeBatchAPI:
    def __init__(self, *, fail: set[str] | None = None, malformed: set[str] | None = None, drop: set[str] | None = None,
                 final_status: str = "completed", model: str = "gpt-4.1-mini-2025-04-14"):
        self.fail, self.malformed, self.drop = fail or set(), malformed or set(), drop or set()
        self.final_status, self.model = final_status, model
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeBatchAPI:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------------ behaviour

    def _new_file(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        fid = f"file-{next(self._ids)}"
        self.files[fid] = {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                           "filename": filename, "purpose": purpose, "status": "processed", "_data": data}
        return self.files[fid]

    def finish(self) -> None:
        """Process every batch: write its output and error files, as the real service does within 24 h."""
        with self.lock:
            for b in self.batches.values():
                if b["status"] in ("completed", "expired", "failed", "cancelled"):
                    continue
                out, err, done, failed = [], [], 0, 0
                for line in self.files[b["input_file_id"]]["_data"].decode().splitlines():
                    req = json.loads(line)
                    cid = req["custom_id"]
                    if cid in self.drop:
                        continue
                    if cid in self.fail:
                        failed += 1
                        err.append({"id": f"req-{cid}", "custom_id": cid, "response": {
                            "status_code": 500, "body": {"error": {"message": "The server had an error", "type": "server_error"}}},
                            "error": None})
                        continue
                    done += 1
                    out.append({"id": f"req-{cid}", "custom_id": cid, "error": None,
                                "response": {"status_code": 200, "request_id": f"rq-{cid}",
                                             "body": self._completion(req["body"], cid)}})
                b["output_file_id"] = self._new_file("".join(json.dumps(x) + "\n" for x in out).encode(),
                                                     "output.jsonl", "batch_output")["id"] if out else None
                b["error_file_id"] = self._new_file("".join(json.dumps(x) + "\n" for x in err).encode(),
                                                    "errors.jsonl", "batch_output")["id"] if err else None
                b["status"] = self.final_status
                b["request_counts"] = {"total": b["request_counts"]["total"], "completed": done, "failed": failed}

    def _completion(self, body: dict[str, Any], cid: str) -> dict[str, Any]:
        if cid in self.malformed:
            content = '{"key_points": {"oops": '
        else:
            schema = _schema_of(body)
            content = json.dumps(grade_like_reply(schema, _answer_of(body)) if schema else {"ok": True})
        prompt = "".join(m.get("content") or "" for m in body.get("messages", []))
        return {"id": f"chatcmpl-{cid}", "object": "chat.completion", "created": int(time.time()), "model": self.model,
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": rough_tokens(prompt), "completion_tokens": rough_tokens(content),
                          "total_tokens": rough_tokens(prompt) + rough_tokens(content),
                          "prompt_tokens_details": {"cached_tokens": 0}}}

    def _public(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any, content_type: str = "application/json") -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _not_found(self) -> None:
                self._send(404, {"error": {"message": f"no such object: {self.path}", "type": "invalid_request_error"}})

            def do_GET(self) -> None:
                parts = self.path.split("?")[0].strip("/").split("/")  # v1, batches|files, id, [content]
                api.requests.append(("GET", self.path))
                if len(parts) == 3 and parts[1] == "batches" and parts[2] in api.batches:
                    self._send(200, api.batches[parts[2]])
                elif len(parts) == 4 and parts[1] == "files" and parts[3] == "content" and parts[2] in api.files:
                    self._send(200, api.files[parts[2]]["_data"], "application/octet-stream")
                else:
                    self._not_found()

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                path = self.path.split("?")[0].rstrip("/")
                api.requests.append(("POST", self.path))
                if path.endswith("/files"):
                    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                        b"content-type: " + self.headers["content-type"].encode() + b"\r\n\r\n" + raw)
                    fields = {part.get_param("name", header="content-disposition"): part for part in msg.iter_parts()}
                    upload = fields["file"]
                    purpose = fields["purpose"].get_content().strip()
                    created = api._new_file(upload.get_payload(decode=True), upload.get_filename() or "upload", purpose)
                    self._send(200, api._public(created))
                elif path.endswith("/batches"):
                    body = json.loads(raw)
                    if body.get("input_file_id") not in api.files or body.get("endpoint") != "/v1/chat/completions":
                        self._send(400, {"error": {"message": "bad input_file_id or endpoint", "type": "invalid_request_error"}})
                        return
                    n = len(api.files[body["input_file_id"]]["_data"].splitlines())
                    bid = f"batch_{next(api._ids)}"
                    api.batches[bid] = {"id": bid, "object": "batch", "endpoint": body["endpoint"],
                                        "input_file_id": body["input_file_id"], "completion_window": body["completion_window"],
                                        "status": "in_progress", "created_at": int(time.time()), "output_file_id": None,
                                        "error_file_id": None, "metadata": body.get("metadata"),
                                        "request_counts": {"total": n, "completed": 0, "failed": 0}}
                    self._send(200, api.batches[bid])
                else:
                    self._not_found()

        return Handler
