"""JSON for structured output: the strict schema sent to the endpoint, and lenient parsing of
what comes back, validated against the pydantic response model."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)


class InvalidReply(ValueError):
    """A reply that is not JSON valid for the response model; the message goes back to the model."""


# --------------------------------------------------------------------------- schemas and parsing


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline_refs(defs[node["$ref"].split("/")[-1]], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def _tighten(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _tighten(v) for k, v in node.items() if k not in ("default", "title")}
        if node.get("type") == "object" and "properties" in node:
            node["additionalProperties"] = False
            node["required"] = list(node["properties"])
        return node
    if isinstance(node, list):
        return [_tighten(v) for v in node]
    return node


@lru_cache(maxsize=256)
def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the form OpenAI's strict mode demands: refs inlined (llama.cpp
    copes better), every property required, no additional properties, no defaults.
    Cached per model class (building it costs milliseconds per request); callers must not mutate it."""
    raw = model.model_json_schema(by_alias=True)
    return _tighten(_inline_refs(raw, raw.get("$defs", {})))


def _extract_json(content: str) -> Any:
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    try:
        # strict=False: grammar-constrained local models emit raw newlines inside strings
        return json.loads(text, strict=False)
    except json.JSONDecodeError as first:
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            try:
                return json.loads(text[start:end + 1], strict=False)
            except json.JSONDecodeError:
                pass
        raise InvalidReply(f"the reply is not valid JSON ({first.msg} at line {first.lineno} column {first.colno})") from None


def parse_json_reply(model: type[T], content: str | None) -> T:
    """Validate a reply's text against the model, or raise InvalidReply saying what is wrong."""
    if content is None or not content.strip():
        raise InvalidReply("the reply was empty")
    data = _extract_json(content)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:6]:
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(f"{where}: {err['msg']}")
        more = f" (and {exc.error_count() - 6} more)" if exc.error_count() > 6 else ""
        raise InvalidReply("the JSON does not match the schema: " + "; ".join(problems) + more) from None


# --------------------------------------------------------------------------- the endpoint
