"""Declarations: unavailability of effecteurs, problems reported by regulators.

- An **effecteur** declares himself unavailable at one of his places (``offer_id``) or everywhere: up to
  3 periods per place (bounded), or one period "indefinitely from a date" (no end). The place must be
  his (the offer's national id is his token's ``national_id``).
- A **regulator / OSNP** reports about a practitioner at a place of his own territories: ``unavailable``
  (hides him there for the period given, by default until the end of the day, Europe/Paris, at most
  ``SAS_REPORT_MAX_HOURS`` from now), ``wrong_specialty`` or ``other`` (information for the territory's
  managers: they do not change search). Reports are filed under the offer's territory (its SAS sees and
  cancels them) and limited per author (``SAS_REPORTS_PER_HOUR``).

Declarations are written with an immediate refresh (``refresh=True``: the index is small and written a few
times a minute at most; ``wait_for`` waited for the next scheduled refresh, up to its 1 s interval). Once
the answer is sent, ``on_change`` tells this process's search service to drop its shared read of the
declarations, so its next search (``search_api.query.search.declarations_body``) excludes the practitioner;
the other API processes do within their ``DECLARATIONS_CACHE_S`` (0.5 s) plus one read — within a second.
Cancelling sets ``active = false`` the same way.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from mappings.declarations import DeclarationDoc, DeclarationPeriod
from sas_core.clock import utcnow
from sas_core.errors import BadRequest, Forbidden, NotFound, TooManyRequests, Unprocessable
from search_api.auth import Principal, Role
from search_api.workflow import queries
from search_api.workflow.scope import Scope
from search_api.workflow.store import DocStore

INDEX = "declarations"
MAX_PERIODS_PER_PLACE = 3
PARIS = ZoneInfo("Europe/Paris")
#: Window of the per-author report limit (``Settings.reports_per_hour``).
RATE_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class PeriodIn:
    start: datetime
    end: datetime | None = None


def end_of_day(moment: datetime) -> datetime:
    """Midnight after ``moment``, Europe/Paris."""
    local = moment.astimezone(PARIS)
    return datetime.combine(local.date() + timedelta(days=1), time(0, 0), tzinfo=PARIS)


def check_periods(periods: list[PeriodIn], *, now: datetime) -> list[PeriodIn]:
    """Ordered, non-overlapping periods with offsets; at most one without end, and it is the last."""
    if not periods:
        raise BadRequest("give at least one period (start, and end unless indefinitely)")
    ordered = sorted(periods, key=lambda p: p.start)
    for period in ordered:
        if period.start.tzinfo is None or (period.end is not None and period.end.tzinfo is None):
            raise BadRequest("period dates need an offset (e.g. 2025-06-17T08:00:00+02:00)")
        if period.end is not None and period.end <= period.start:
            raise BadRequest("a period must end after it starts")
        if period.end is not None and period.end <= now:
            raise BadRequest("a period must not be over already")
    for before, after in pairwise(ordered):
        if before.end is None or before.end > after.start:
            raise BadRequest("periods must not overlap (an open-ended period must be the last)")
    return ordered


class DeclarationService:
    def __init__(self, *, store: DocStore, clock: Callable[[], datetime] = utcnow,
                 max_report_hours: int = 72, reports_per_hour: int = 30,
                 on_change: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.on_change = on_change
        self.clock = clock
        self.max_report_hours = max_report_hours
        self.reports_per_hour = reports_per_hour
        # One lock per author (a few thousand regulators at most): see ``report``.
        self._author_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _offer(self, offer_id: str) -> dict:
        found = self.store.get("offers", offer_id)
        if found is None:
            raise NotFound(f"no practice place {offer_id}")
        return found.source

    def declare_unavailability(self, principal: Principal, *, offer_id: str | None, periods: list[PeriodIn],
                               comment: str | None = None) -> dict:
        """An effecteur's unavailability at one place (``offer_id``) or at every place (``None``)."""
        national_id = principal.national_id
        if not principal.has_any(Role.EFFECTEUR, Role.ADMIN) or not national_id:
            raise Forbidden("only a practitioner (token with a national id) declares his own unavailability")
        now = self.clock()
        ordered = check_periods(periods, now=now)
        offer = self._offer(offer_id) if offer_id else {}
        if offer_id and offer.get("national_id") != national_id:
            raise Forbidden("this place is not yours")
        # A declaration for every place ("Tous mes lieux") is filed under the territories
        # of all his places, or his SAS's regulators never see it; the name is the directory's, not the
        # login's display name.
        places = [offer] if offer_id else self._places_of(national_id)
        territory = self._territory_of(places)
        directory_name = next((p.get("name") for p in places if p.get("name")), None)
        existing = self.store.search(INDEX, queries.active_unavailability_body(
            offer_id=offer_id, national_id=national_id, now=now))["hits"]["hits"]
        current = 0
        for hit in existing:
            source = hit["_source"]
            if offer_id and source.get("offer_id") not in (None, offer_id):
                continue
            current += sum(1 for p in source.get("periods") or []
                           if not p.get("end") or datetime.fromisoformat(p["end"].replace("Z", "+00:00")) > now)
        if current + len(ordered) > MAX_PERIODS_PER_PLACE:
            raise Unprocessable(f"at most {MAX_PERIODS_PER_PLACE} unavailability periods per place: "
                                f"{current} already declared; cancel one first")
        doc = DeclarationDoc(
            id=uuid.uuid4().hex, kind="unavailable", scope="place" if offer_id else "practitioner",
            declared_by_role="effecteur", declared_by=principal.sub, declared_by_name=principal.name,
            subject_national_id=national_id, subject_name=directory_name or principal.name,
            # The search excludes by national id (every place) only for practitioner-wide declarations.
            national_id=None if offer_id else national_id, offer_id=offer_id,
            place_address=(offer.get("address") or {}).get("text"), territory=territory,
            periods=[DeclarationPeriod(start=p.start, end=p.end) for p in ordered], comment=comment, created_at=now,
        )
        return self._write(doc)

    def _places_of(self, national_id: str) -> list[dict]:
        """The practitioner's places in the directory (a practitioner has a handful; 200 is generous)."""
        body = queries.practitioner_territories_body(national_id=national_id)
        return [hit["_source"] for hit in self.store.search("offers", body)["hits"]["hits"]]

    @staticmethod
    def _territory_of(places: list[dict]) -> str | list[str] | None:
        """One territory as a string (every existing reader expects one); places in several territories
        give a sorted list: one document, which each of those SAS sees (a ``terms`` filter matches any value
        of a keyword array), cancels once, and counts once against the per-place limit."""
        found = sorted({p["territory"] for p in places if p.get("territory")})
        if not found:
            return None
        return found[0] if len(found) == 1 else found

    def report(self, principal: Principal, *, kind: str, offer_id: str, period: PeriodIn | None = None,
               comment: str | None = None) -> dict:
        """A regulator's report about a practitioner at a place of one of his territories.

        The report is filed under the offer's territory (never the author's): the practitioner's own SAS
        sees it in its declarations and dashboards and may cancel it. A SAS-47 regulator cannot hide a
        SAS-33 practitioner: 403 (he calls SAS-33, which reports if needed). "unavailable" hides the
        practitioner at most ``report_max_hours`` from now; an author files at most ``reports_per_hour``
        reports per rolling hour (429 past that), so a script cannot hide a territory's offers."""
        if not principal.has_any(Role.REGULATOR, Role.OSNP, Role.ADMIN):
            raise Forbidden("only regulators and OSNP report problems about practitioners")
        if kind not in ("unavailable", "wrong_specialty", "other"):
            raise BadRequest("kind must be unavailable, wrong_specialty or other")
        now = self.clock()
        offer = self._offer(offer_id)
        territory = offer.get("territory")
        if not principal.has_any(Role.ADMIN) and (not territory or territory not in principal.territories):
            # Offers are searchable nationally, so their existence is no secret: a clear 403 rather than 404.
            raise Forbidden(f"this place belongs to {territory or 'no territory'}, not to your territories "
                            f"({', '.join(sorted(principal.territories)) or 'none'}): ask that SAS to report it")
        periods: list[DeclarationPeriod] = []
        if kind == "unavailable":
            chosen = period or PeriodIn(start=now, end=end_of_day(now))
            end = chosen.end
            if end is None:
                raise BadRequest("a regulator's unavailability report needs an end (only the practitioner "
                                 "declares himself unavailable indefinitely)")
            (checked,) = check_periods([chosen], now=now)
            limit = now + timedelta(hours=self.max_report_hours)
            if end > limit:
                # Refused rather than shortened: the regulator must know how long the hiding lasts.
                raise Unprocessable(f"a regulator's unavailability report lasts at most {self.max_report_hours} h: "
                                    f"end it by {limit.isoformat(timespec='minutes')} (the practitioner declares "
                                    "longer absences himself)", details={"max_end": limit.isoformat()})
            periods = [DeclarationPeriod(start=checked.start, end=checked.end)]
        elif kind == "other" and not comment:
            raise BadRequest("say what the problem is in 'comment'")
        # One author's reports are counted and written one at a time in this process, so parallel requests
        # cannot all pass the count before any is written (the count reads written reports only). A second
        # report while one is being filed is refused at once rather than queued: queued requests would hold
        # the thread pool (a person never files two reports in the same second).
        lock = self._author_lock(principal.sub)
        if not lock.acquire(blocking=False):
            raise TooManyRequests("one of your reports is being filed: send the next one when it is done",
                                  retry_after_s=1)
        try:
            self._check_report_rate(principal, now=self.clock())
            return self._write(self._report_doc(principal, kind=kind, offer=offer, offer_id=offer_id,
                                                territory=territory, periods=periods, comment=comment, now=now))
        finally:
            lock.release()

    def _author_lock(self, author: str) -> threading.Lock:
        with self._locks_guard:
            return self._author_locks.setdefault(author, threading.Lock())

    @staticmethod
    def _report_doc(principal: Principal, *, kind: str, offer: dict, offer_id: str, territory: str | None,
                    periods: list[DeclarationPeriod], comment: str | None, now: datetime) -> DeclarationDoc:
        return DeclarationDoc(
            id=uuid.uuid4().hex, kind=kind, scope="place", declared_by_role="regulator", declared_by=principal.sub,
            declared_by_name=principal.name,
            declared_by_roles=sorted(r.value for r in principal.roles
                                     if r in (Role.REGULATOR, Role.OSNP, Role.ADMIN)),
            declared_by_territories=sorted(principal.territories),
            subject_national_id=offer.get("national_id"),
            subject_name=offer.get("name"), national_id=None, offer_id=offer_id,
            place_address=(offer.get("address") or {}).get("text"), territory=territory, periods=periods,
            comment=comment, created_at=now,
        )

    def _check_report_rate(self, principal: Principal, *, now: datetime) -> None:
        """``TooManyRequests`` when the author already filed ``reports_per_hour`` reports in the last hour.

        Counted in the index (reports are written with ``wait_for``), so the limit holds across API
        replicas and restarts; within one process an author's reports are serialised (``report``), so
        only requests spread over several replicas at the same instant may overshoot (by one per
        other replica)."""
        since = now - RATE_WINDOW
        response = self.store.search(INDEX, queries.reports_by_author_body(author=principal.sub, since=since))
        count = int(response["hits"]["total"]["value"])
        if count >= self.reports_per_hour:
            oldest = response["hits"]["hits"][0]["_source"]["created_at"] if response["hits"]["hits"] else None
            retry = RATE_WINDOW.total_seconds()
            if oldest:
                retry = (datetime.fromisoformat(oldest) + RATE_WINDOW - now).total_seconds()
            raise TooManyRequests(f"at most {self.reports_per_hour} reports per hour per author: try again later "
                                  "or ask the territory's managers", retry_after_s=max(1, int(retry) + 1))

    def refile_reports(self) -> list[dict]:
        """Move regulators' reports filed under another territory than their offer's (earlier versions
        filed a SAS-47 regulator's report about a SAS-33 place under SAS-47, out of SAS-33's sight) to the
        offer's territory, keeping the territory they were filed under as the author's
        (``declared_by_territories``) when none was recorded. Idempotent; returns what was moved
        (``sas declarations refile-reports``)."""
        moved: list[dict] = []
        hits = list(self.store.scan(INDEX, queries.regulator_reports_body()))
        for start in range(0, len(hits), 500):
            chunk = [h["_source"] for h in hits[start:start + 500]]
            ids = [d["offer_id"] for d in chunk if d.get("offer_id")]
            offers = self.store.executor.mget_sources(index="offers", ids=ids, source=["territory"])
            for doc in chunk:
                territory = (offers.get(doc.get("offer_id") or "") or {}).get("territory")
                if not territory or territory == doc.get("territory"):
                    continue
                fields: dict = {"territory": territory}
                if not doc.get("declared_by_territories") and doc.get("territory"):
                    fields["declared_by_territories"] = [doc["territory"]]
                self.store.patch_unconditional(INDEX, doc["id"], fields, refresh=False)
                moved.append({"id": doc["id"], "offer_id": doc.get("offer_id"), "from": doc.get("territory"),
                              "to": territory})
        if moved:
            self._refresh_and_tell()
        return moved

    def refile_unavailability(self) -> list[dict]:
        """File practitioner-wide unavailability declared by earlier versions without territory under
        the territories of the practitioner's places, and name him as the directory does. Idempotent;
        returns what was changed (``sas declarations refile-unavailability``)."""
        changed: list[dict] = []
        for hit in list(self.store.scan(INDEX, queries.unfiled_unavailability_body())):
            doc = hit["_source"]
            places = self._places_of(doc["subject_national_id"]) if doc.get("subject_national_id") else []
            territory = self._territory_of(places)
            if territory is None:
                continue                # no place in the directory any more: nothing to file it under
            fields: dict = {"territory": territory}
            name = next((p.get("name") for p in places if p.get("name")), None)
            if name and name != doc.get("subject_name"):
                fields["subject_name"] = name
            self.store.patch_unconditional(INDEX, doc["id"], fields, refresh=False)
            changed.append({"id": doc["id"], **fields})
        if changed:
            self._refresh_and_tell()
        return changed

    def _refresh_and_tell(self) -> None:
        """Writes made without refresh become visible, and this process's searches read them anew."""
        self.store.refresh(INDEX)
        self.on_change()

    def _write(self, doc: DeclarationDoc) -> dict:
        document = doc.model_dump(mode="json")
        self.store.create(INDEX, doc.id, document, refresh=True)
        self.on_change()
        return document

    def list(self, scope: Scope, filters: queries.DeclarationFilters, *, page: int,
             size: int) -> tuple[int, list[dict]]:
        if page < 1 or size < 1 or page * size > queries.MAX_RESULT_WINDOW:
            raise BadRequest(f"page × size may not exceed {queries.MAX_RESULT_WINDOW}: narrow the filters")
        response = self.store.search(INDEX, queries.declaration_list_body(scope, filters, page=page, size=size))
        return int(response["hits"]["total"]["value"]), [h["_source"] for h in response["hits"]["hits"]]

    def cancel(self, principal: Principal, declaration_id: str) -> dict:
        """Withdraw a declaration: its author, the practitioner concerned, or an administrator."""
        current = self.store.get(INDEX, declaration_id)
        if current is None:
            raise NotFound(f"no declaration {declaration_id}")
        source = current.source
        allowed = (principal.has_any(Role.ADMIN) or source.get("declared_by") == principal.sub
                   or (principal.has_any(Role.EFFECTEUR) and principal.national_id
                       and principal.national_id == source.get("subject_national_id"))
                   or (principal.has_any(Role.REGULATOR, Role.OSNP) and source.get("declared_by_role") == "regulator"
                       and source.get("territory") in principal.territories))
        if not allowed:
            raise NotFound(f"no declaration {declaration_id}")
        if not source.get("active", True):
            return source
        now = self.clock().isoformat()
        fields = {"active": False, "cancelled_at": now, "cancelled_by": principal.sub}
        self.store.patch_unconditional(INDEX, declaration_id, fields, refresh=True)
        self.on_change()
        return {**source, **fields}
