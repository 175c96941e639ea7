"""Audit record: who viewed or exported which orientations, when. Staff identity and orientation ids only:
never any patient data (orientations carry none, and the filters recorded are the request's own)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from mappings.common import Doc

AuditAction = Literal["view", "list", "export"]


class AuditDoc(Doc):
    id: str
    at: datetime
    action: AuditAction
    actor: str                                 # token subject or API key id
    actor_name: str | None = None
    actor_roles: list[str] = []
    actor_territories: list[str] = []
    actor_structure_id: str | None = None
    orientation_ids: list[str] = []            # at most ``search_api.audit.MAX_IDS`` of them
    orientation_count: int = 0                 # how many were shown or exported
    ids_truncated: bool = False
    filters: str | None = None                 # the request's filters, JSON (kept, not searchable)
    request_id: str | None = None
