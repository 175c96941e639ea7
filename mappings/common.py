"""Pieces shared by several document models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Doc(BaseModel):
    """Base of every indexed document: unknown fields are refused, as the strict mappings do."""

    model_config = ConfigDict(extra="forbid")


class GeoPoint(Doc):
    lat: float
    lon: float
