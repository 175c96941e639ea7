"""Template helpers: French dates and times (Paris), slots grouped by day, phone numbers, labels."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import overload
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
_DAYS = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")
_MONTHS = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc.")

MODE_LABELS = {"AMB": "Au cabinet", "HH": "Visite à domicile", "VR": "Téléconsultation"}
TYPE_LABELS = {"PUBLIC": "Grand public", "PRO": "Professionnels", "SNP": "Soins non programmés", "CPTS": "CPTS"}
KIND_LABELS = {"ps": "Professionnel de santé", "cpts": "CPTS", "sos": "SOS Médecins", "centre": "Centre de santé",
               "msp": "Maison de santé"}
SECTOR_LABELS = {"1": "Secteur 1", "2": "Secteur 2", "3": "Non conventionné"}
STATUS_LABELS = {"oriented": "Orientée", "booked": "Confirmé", "pending": "En attente", "fulfilled": "Honoré",
                 "noshow": "Non honoré", "cancelled": "Annulé"}
#: INT_L02 delivery of the latest message to the regulation software (``lrm_delivery.state``).
LRM_DELIVERY_LABELS = {"held": "Non envoyé (horaire inconnu)", "queued": "En attente du Hub",
                       "published": "Remis au Hub",
                       "acknowledged": "Acquitté par le LRM", "refused": "Refusé"}
DECLARATION_LABELS = {"unavailable": "Indisponible", "wrong_specialty": "Mauvaise spécialité", "other": "Autre"}
SOURCE_LABELS = {"vendor": "Agenda éditeur", "platform_agenda": "Agenda de la plateforme",
                 "beyond_slots": "En sus (hors créneau)"}
#: Heading of the list of offers accepting patients beyond their displayed slots (not "Créneaux en sus des
#: disponibilités": the list has no slots).
BEYOND_TITLE = "Professionnels acceptant des patients en sus de leurs disponibilités"
#: Harvest page: what the "Servis" column counts (``slots_served`` of ``/v1/dashboards/harvest``).
SERVED_HELP = ("Créneaux que la recherche peut afficher maintenant : à venir, non masqués, et rafraîchis depuis "
               "moins que le délai de péremption")


@overload
def local(moment: datetime) -> datetime: ...
@overload
def local(moment: datetime | str | None) -> datetime | None: ...
def local(moment: datetime | str | None) -> datetime | None:
    if moment is None or moment == "":
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.astimezone(PARIS)


def fr_date(moment: datetime | str | None) -> str:
    """``16/02/2024`` (Paris)."""
    value = local(moment)
    return value.strftime("%d/%m/%Y") if value else ""


def fr_time(moment: datetime | str | None) -> str:
    """``14h30`` (Paris)."""
    value = local(moment)
    return f"{value.hour:02d}h{value.minute:02d}" if value else ""


def fr_datetime(moment: datetime | str | None) -> str:
    value = local(moment)
    return f"{fr_date(value)} {fr_time(value)}" if value else ""


def fr_period(period: dict | None) -> str:
    """A declared period as the practitioner entered it: ``Le 01/12/2026``, ``Du 01/12/2026 au 03/12/2026
    inclus``, ``À partir du 01/12/2026``. A period ending at midnight ends the day before (the form's "Au
    (inclus) 01/12" is stored as ending on 02/12 at 00h00): never shown as "au 02/12"."""
    if not period:
        return ""
    start, end = local(period.get("start")), local(period.get("end"))
    if start is None:
        return ""
    if end is None:
        return f"À partir du {fr_date(start)}"
    if (end.hour, end.minute, end.second, end.microsecond) != (0, 0, 0, 0) or \
            (start.hour, start.minute) != (0, 0):
        # Hours given (an API declaration): shown with them.
        return f"Du {fr_datetime(start)} au {fr_datetime(end)}"
    last = (end - timedelta(days=1)).date()
    if last <= start.date():
        return f"Le {fr_date(start)}"
    return f"Du {fr_date(start)} au {last.strftime('%d/%m/%Y')} inclus"


def fr_day(day: date, *, today: date | None = None) -> str:
    """``Aujourd'hui``, ``Demain`` or ``lun. 4 nov.``."""
    today = today or datetime.now(PARIS).date()
    if day == today:
        return "Aujourd'hui"
    if day == today + timedelta(days=1):
        return "Demain"
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def by_day(slots: list, *, today: date | None = None) -> list[tuple[str, list]]:
    """Slots (objects or dicts with ``start``) grouped by their Paris day, in order."""
    groups: dict[date, list] = {}
    for slot in slots:
        start = slot["start"] if isinstance(slot, dict) else slot.start
        groups.setdefault(local(start).date(), []).append(slot)
    return [(fr_day(day, today=today), items) for day, items in sorted(groups.items())]


def fr_phone(number: str | None) -> str:
    """``+33556000000`` → ``05 56 00 00 00``; anything else unchanged."""
    if not number:
        return ""
    digits = number.replace(" ", "").replace(".", "")
    if digits.startswith("+33") and len(digits) == 12:
        digits = "0" + digits[3:]
    if len(digits) == 10 and digits.isdigit():
        return " ".join(digits[i:i + 2] for i in range(0, 10, 2))
    return number


def fr_count(count: int, relation: str = "eq") -> str:
    """``25000`` → ``25 000`` (thousands apart by a narrow no-break space, as French writes them); a lower bound
    (``relation`` ``gte``: counting stopped early) reads ``plus de 25 000``."""
    text = f"{count:,}".replace(",", "\u202f")
    return f"plus de {text}" if relation == "gte" else text


def tel_href(number: str | None) -> str:
    return "tel:" + (number or "").replace(" ", "")


def km(distance: float | None) -> str:
    if distance is None:
        return ""
    return f"{distance * 1000:.0f} m" if distance < 1 else f"{distance:.1f} km".replace(".", ",")


def with_q(query_string: str | None, q: str | None) -> str:
    """The search's query string for a link that keeps it (the CPTS page and back), with ``q`` added when the
    search came from a contextual call (its place is then in other parameters)."""
    from urllib.parse import parse_qsl, urlencode

    pairs = parse_qsl(str(query_string or ""), keep_blank_values=False)
    if q and not any(k == "q" for k, _ in pairs):
        pairs.append(("q", q))
    return urlencode([(k, v) for k, v in pairs if k != "page"])


#: Why a harvest held its deletions (``harvest_runs.alerts``), for the harvest-health page.
HARVEST_ALERT_LABELS = {
    "batch_mass_deletion": "un lot aurait supprimé bien plus que d'habitude",
    "run_mass_deletion": "la collecte aurait supprimé bien plus que d'habitude",
    "total_mismatch": "la réponse annonçait plus de créneaux qu'elle n'en contenait",
}


def filters() -> dict:
    """The Jinja2 filters this module provides."""
    return {"fr_date": fr_date, "fr_time": fr_time, "fr_datetime": fr_datetime, "fr_phone": fr_phone,
            "tel_href": tel_href, "km": km, "fr_count": fr_count, "by_day": by_day, "fr_period": fr_period}
