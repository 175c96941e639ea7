"""Answers of the search routes serialized in one step (no second validation of what is already shaped)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response
from pydantic import BaseModel


def shaped_response(result: dict[str, Any]) -> Response:
    """An answer the search service already shaped field for field as its published model (same keys,
    order and types: ``tests/integration/search/test_search_response_shape.py`` checks it byte for byte
    against the model's own serialization), serialized as is by orjson (same number formats as the
    model; ``Z`` for UTC date-times, as the model writes them) without validating it again: validation
    cost more than the rest of the answer's shaping."""
    return Response(content=orjson.dumps(result, option=orjson.OPT_UTC_Z), media_type="application/json")


def contract_response(model: type[BaseModel], result: dict[str, Any]) -> Response:
    """The answer validated against its published model, serialized by pydantic-core in one step
    (FastAPI's generic path would validate, convert to Python, then serialize with the json module)."""
    return Response(content=model.model_validate(result).model_dump_json(by_alias=True),
                    media_type="application/json")
