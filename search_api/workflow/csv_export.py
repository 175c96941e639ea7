"""CSV export of orientations, for Excel: UTF-8 with BOM, ``;`` separator, French column names, and the
screen's wording (one vocabulary, whichever door it is read from): status and specialty labels, times as
``09h10``, dates as ``01/12/2026`` (the labels and formats come from ``search_api.web.format``, shared with
the pages)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator

from search_api.web.format import STATUS_LABELS, fr_date, fr_datetime, fr_time

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


def row(doc: dict, *, specialty_label: Callable[[str], str | None] | None = None) -> list[str]:
    """One CSV row of an orientation document (Paris times), worded as the orientations table is;
    ``specialty_label``: TRE_R38 code → label (the code itself when it has none)."""
    start, end = doc.get("consultation_start"), doc.get("consultation_end")
    slot = ""
    if doc.get("source") == "beyond_slots":
        slot = "En sus (hors créneau)"
    elif start:
        slot = fr_time(start) + (f"-{fr_time(end)}" if end else "")
    specialty = (doc.get("effecteur") or {}).get("specialty") or ""
    status = doc.get("status") or ""
    regulator = doc.get("regulator") or {}
    effecteur = doc.get("effecteur") or {}
    rpps = effecteur.get("national_id") or ""
    return [neutralise(cell) for cell in (
        fr_datetime(doc.get("created_at")),
        fr_date(start),
        slot,
        regulator.get("name") or regulator.get("id") or "",
        doc.get("territory") or "",
        effecteur.get("name") or "",
        rpps[1:] if rpps.startswith("8") and len(rpps) == 12 else rpps,
        ((specialty_label(specialty) if specialty_label and specialty else None) or specialty),
        doc.get("place_address") or "",
        STATUS_LABELS.get(status, status),
    )]


def stream(docs: Iterable[dict], *, specialty_label: Callable[[str], str | None] | None = None) -> Iterator[str]:
    """The CSV text, chunk by chunk: BOM and header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    yield BOM + buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    for count, doc in enumerate(docs, start=1):
        writer.writerow(row(doc, specialty_label=specialty_label))
        if count % 200 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
