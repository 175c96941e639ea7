"""Liveness and readiness probes (no authentication).

Both are ``async def`` and never touch the request thread pool: a synchronous probe queued behind the
searches (``/readyz`` took 4.3 s under 200 connections against a 5 s check), so an overloaded API was
restarted instead of being left to drain."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", summary="Elasticsearch reachable and every alias present (503 otherwise)")
async def readyz(request: Request) -> JSONResponse:
    state = dict(await request.app.state.readiness.state())
    if not state.pop("ok"):
        return JSONResponse({"status": "unavailable", **state}, status_code=503, headers={"Retry-After": "5"})
    if state["missing_aliases"] or state["cluster_status"] not in {"green", "yellow"}:
        return JSONResponse({"status": "unavailable", **state}, status_code=503, headers={"Retry-After": "5"})
    return JSONResponse({"status": "ready", **state})
