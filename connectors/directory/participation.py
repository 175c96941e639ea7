"""SAS participation companion file (CSV): who takes part in the SAS, how.

Participation is not in the national directory. In production it comes from the platform's own
registrations (effecteurs and structure managers declare it in the platform); for the demo, the
directory generator writes it beside the RPPS / FINESS files and ``sas directory load --participation``
reads it. Format: ``;``-separated UTF-8 with this header::

    kind;identifier;participates;cpts_finess;accepts_beyond;beyond_phone;vendor;convention_sector;opening_hours

* ``kind`` — ``ps`` (identifier = national id ``8``+RPPS / ``0``+ADELI; applies to every practice place
  of the practitioner), ``cpts`` / ``msp`` / ``centre`` (identifier = FINESS établissement), ``sos``
  (identifier = the RPPS "Identifiant technique de la structure" of the SOS Médecins fixed place);
* ``participates`` / ``accepts_beyond`` — ``1``/``0`` (also ``true``/``false``, ``oui``/``non``);
* ``cpts_finess`` — the CPTS through which a practitioner participates (empty: individually);
* ``beyond_phone`` — direct number for patients beyond displayed slots ("en sus");
* ``vendor`` — id of the connected scheduling vendor (empty: none / manual agenda);
* ``convention_sector`` — ``1``, ``2`` or ``3`` (non conventionné) when known;
* ``opening_hours`` — SOS places: free text such as ``lun-ven 20:00-24:00, sam-dim 08:00-24:00``.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from connectors.directory.ids import split_national
from connectors.directory.records import Rejection
from sas_core.counts import ReasonCounts
from sas_core.errors import DataQualityError

HEADER = ("kind", "identifier", "participates", "cpts_finess", "accepts_beyond", "beyond_phone", "vendor",
          "convention_sector", "opening_hours")
KINDS = {"ps", "cpts", "msp", "centre", "sos"}
_TRUE = {"1", "true", "oui", "o", "yes", "y"}
_FALSE = {"0", "false", "non", "n", "no", ""}


@dataclass(frozen=True, slots=True)
class SasParticipation:
    """What the offer's ``sas`` block says."""

    participates: bool
    cpts_finess: str | None
    accepts_beyond: bool
    beyond_phone: str | None
    vendor: str | None
    convention_sector: str | None = None
    opening_hours: str | None = None


@dataclass
class ParticipationTable:
    """Participation by (kind, identifier), with what was rejected while reading it."""

    entries: dict[tuple[str, str], SasParticipation] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    lines: int = 0

    def get(self, kind: str, identifier: str) -> SasParticipation | None:
        return self.entries.get((kind, identifier))

    def cpts_members(self) -> Counter[str]:
        """Number of participating practitioners per CPTS FINESS."""
        return Counter(p.cpts_finess for (kind, _), p in self.entries.items()
                       if kind == "ps" and p.participates and p.cpts_finess)

    def rejected_by_reason(self) -> ReasonCounts:
        return ReasonCounts(r.reason for r in self.rejections)


def _bool(value: str) -> bool | None:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return None


def parse_participation(text: str) -> ParticipationTable:
    """Parse the companion CSV (see module doc); bad lines are rejected with a reason, never dropped."""
    table = ParticipationTable()
    reader = csv.reader(io.StringIO(text), delimiter=";")
    header = next(reader, None)
    if header is None or [h.strip().lstrip("\ufeff") for h in header][:7] != list(HEADER[:7]):
        raise DataQualityError(f"participation file: expected header {';'.join(HEADER)}")
    width = len(header)
    for line_no, row in enumerate(reader, start=2):
        if not row or not any(x.strip() for x in row):
            continue
        table.lines += 1
        if len(row) != width:
            table.rejections.append(Rejection("wrong_column_count", line_no, f"{len(row)} columns"))
            continue
        values = dict(zip(header, (x.strip() for x in row), strict=True))
        kind, identifier = values["kind"], values["identifier"]
        if kind not in KINDS:
            table.rejections.append(Rejection("unknown_kind", line_no, kind))
            continue
        if not identifier or (kind == "ps" and split_national(identifier) is None):
            table.rejections.append(Rejection("invalid_identifier", line_no, identifier))
            continue
        participates, beyond = _bool(values["participates"]), _bool(values["accepts_beyond"])
        if participates is None or beyond is None:
            table.rejections.append(Rejection("invalid_boolean", line_no))
            continue
        sector = values.get("convention_sector") or None
        if sector not in (None, "1", "2", "3"):
            table.rejections.append(Rejection("invalid_convention_sector", line_no, sector))
            continue
        table.entries[(kind, identifier)] = SasParticipation(
            participates=participates,
            cpts_finess=values["cpts_finess"] or None,
            accepts_beyond=beyond,
            beyond_phone=values["beyond_phone"] or None,
            vendor=values["vendor"] or None,
            convention_sector=sector,
            opening_hours=values.get("opening_hours") or None,
        )
    return table


def read_participation(path: Path | str) -> ParticipationTable:
    """Read the companion file (small: one line per participant)."""
    path = Path(path)
    if not path.is_file():
        raise DataQualityError(f"participation file not found: {path}")
    return parse_participation(path.read_text(encoding="utf-8-sig"))
