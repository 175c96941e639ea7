"""Liveness and readiness probes (no authentication)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from sas_core.errors import SasError
from search_api.deps import ExecutorDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", summary="Elasticsearch reachable and every alias present (503 otherwise)")
def readyz(executor: ExecutorDep) -> JSONResponse:
    try:
        state = executor.readiness()
    except SasError as exc:
        return JSONResponse({"status": "unavailable", "reason": exc.message}, status_code=503,
                            headers={"Retry-After": "5"})
    if state["missing_aliases"] or state["cluster_status"] not in {"green", "yellow"}:
        return JSONResponse({"status": "unavailable", **state}, status_code=503, headers={"Retry-After": "5"})
    return JSONResponse({"status": "ready", **state})
