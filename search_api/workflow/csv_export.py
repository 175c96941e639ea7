"""CSV export of orientations, for Excel: UTF-8 with BOM, ``;`` separator, French column names."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
COLUMNS = ("date d'orientation", "date de consultation", "créneau", "régulateur", "territoire", "effecteur",
           "RPPS", "spécialité", "adresse", "statut")
BOM = "\ufeff"
#: A cell starting with one of these is read as a formula by spreadsheet software (OWASP "CSV injection"):
#: a regulator's name comes from a token or the login form, a place's address from a vendor or the
#: directory, so neither is trusted. Such a cell gets a leading single quote, which shows the text as is.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    """``value`` made inert for spreadsheets (prefixed with ``'`` when it would start a formula)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _local(value: str | None, fmt: str) -> str:
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(PARIS).strftime(fmt)


def row(doc: dict) -> list[str]:
    """One CSV row of an orientation document (local Paris times)."""
    start, end = doc.get("consultation_start"), doc.get("consultation_end")
    slot = ""
    if start:
        slot = _local(start, "%H:%M") + (f"-{_local(end, '%H:%M')}" if end else "")
    regulator = doc.get("regulator") or {}
    effecteur = doc.get("effecteur") or {}
    rpps = effecteur.get("national_id") or ""
    return [neutralise(cell) for cell in (
        _local(doc.get("created_at"), "%d/%m/%Y %H:%M"),
        _local(start, "%d/%m/%Y"),
        slot,
        regulator.get("name") or regulator.get("id") or "",
        doc.get("territory") or "",
        effecteur.get("name") or "",
        rpps[1:] if rpps.startswith("8") and len(rpps) == 12 else rpps,
        effecteur.get("specialty") or "",
        doc.get("place_address") or "",
        doc.get("status") or "",
    )]


def stream(docs: Iterable[dict]) -> Iterator[str]:
    """The CSV text, chunk by chunk: BOM and header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    yield BOM + buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    for count, doc in enumerate(docs, start=1):
        writer.writerow(row(doc))
        if count % 200 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
