"""INT_R03: appointments reported by vendors, mapped onto orientations.

Matching, in order:

1. an orientation already linked to the vendor's identifier (``vendor`` + ``system`` + ``value``):
   updated — reporting the same thing twice changes nothing (idempotent);
2. a redirect-mode orientation of the same vendor, practitioner and start, not linked yet (the
   regulator booked on the vendor's page after the platform sent him there): linked and updated;
3. otherwise a new orientation (``booking_mode = "reported"``, flag ``unmatched_report``) whose id is
   derived from the vendor's identifier, so that two simultaneous reports create only one.

Nothing about the patient is read from the Appointment.

**What a vendor may report** (security): only appointments of practitioners it serves —
its roster in the vendors file, the offers naming it (``sas.vendor``, or the SOS Médecins association of its
``sos_roster`` / of its offers), the slots it published (``slots.vendor``) — and booked by a regulator the
platform knows (an account, by national id — IDNPS — or platform UUID — INTRN). A pending SOS Médecins
appointment that names no doctor yet needs a vendor doing SOS Médecins. Otherwise: 422 (OperationOutcome,
``business-rule``). The same holds when an update names another practitioner than the orientation's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from connectors.vendors.config import VendorConfig
from mappings.orientations import OrientationDoc, OrientationEffecteur, OrientationRegulator, StatusChange
from sas_core.clock import utcnow
from sas_core.errors import Conflict, Unprocessable
from sas_core.structure_ids import siret_bare, siret_wire
from search_api.workflow import queries
from search_api.workflow.appointments import AppointmentReport, FhirInvalid, Issue
from search_api.workflow.common import KIND_CATEGORY, report_id
from search_api.workflow.orientations import OrientationService
from search_api.workflow.store import DocStore


class ReportService:
    def __init__(self, *, store: DocStore, orientations: OrientationService,
                 vendors: Callable[[], list[VendorConfig]] = list, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.orientations = orientations
        self.vendors = vendors
        self.clock = clock

    def receive(self, vendor: str, report: AppointmentReport, *,
                conditional: tuple[str, str] | None = None) -> tuple[dict, bool]:
        """Apply one report; returns (orientation, created)."""
        if conditional is not None and conditional != (report.system, report.value):
            raise Unprocessable("the identifier of the URL and of the body differ")
        by = f"vendor:{vendor}"
        fields = {"vendor_appointment_system": report.system, "vendor_appointment_id": report.value,
                  "consultation_start": report.start.isoformat(),
                  "consultation_end": report.end.isoformat() if report.end else None}
        if report.category:
            fields["category"] = report.category
        for _ in range(5):
            linked = self.store.first("orientations", queries.by_vendor_appointment_body(
                vendor=vendor, system=report.system, value=report.value))
            if linked is not None:
                document, _ = self.orientations.change(
                    linked.id, by=by, status=report.status,
                    fields={**fields, **self._effecteur_fields(linked.source, report)})
                self._settle_claim(document)
                return document, False
            waiting = self.store.first("orientations", queries.redirect_match_body(
                vendor=vendor, national_id=report.practitioner_national_id, start=report.start,
                operator_national_id=report.operator_national_id, operator_account_id=report.operator_account_id))
            if waiting is not None:
                def guard(current: dict) -> None:
                    if current.get("vendor_appointment_id") not in (None, report.value):
                        raise _Taken()
                try:
                    document, _ = self.orientations.change(waiting.id, by=by, status=report.status, fields=fields,
                                                           guard=guard)
                    self._settle_claim(document)
                    return document, False
                except _Taken:
                    continue      # linked to another appointment meanwhile: look again
            return self._create(vendor, report, by=by)
        raise Conflict("could not settle this report among concurrent ones; retry")

    def _settle_claim(self, orientation: dict) -> None:
        """The report settles the lease of the slot the orientation claimed: an appointment the vendor
        holds keeps the slot hidden for good (no lease); one it cancelled ends the lease now, so the next
        harvest shows the slot again only if the vendor lists it free."""
        slot_id = orientation.get("slot_id")
        if orientation.get("source") != "vendor" or not slot_id:
            return
        expires = self.clock().isoformat() if orientation.get("status") == "cancelled" else None
        current = self.store.get("slots", slot_id)
        if current is None or current.source.get("claimed_by") not in (None, orientation.get("id")):
            return
        if current.source.get("hidden"):
            self.store.patch_unconditional("slots", slot_id, {"claim_expires_at": expires}, refresh=True)

    def _create(self, vendor: str, report: AppointmentReport, *, by: str) -> tuple[dict, bool]:
        orientation_id = report_id(vendor, report.system, report.value)
        existing = self.store.get("orientations", orientation_id)
        if existing is not None:
            fields = {"consultation_start": report.start.isoformat(),
                      "consultation_end": report.end.isoformat() if report.end else None,
                      **self._effecteur_fields(existing.source, report)}
            document, _ = self.orientations.change(orientation_id, by=by, status=report.status, fields=fields)
            return document, False
        # A new orientation: the vendor must serve the practitioner, and the regulator must be a known account
        # (else a vendor could fabricate orientations for any practitioner, regulator or territory).
        self._check_served(vendor, report.practitioner_national_id)
        account = self._account(report)
        self._check_operator(account, report)
        now = self.clock()
        offer = self._offer(report.practitioner_national_id)
        territory = next(iter(sorted(account.get("territories") or [])), None) or offer.get("territory")
        regulator = OrientationRegulator(
            id=account.get("id") or report.operator_account_id, national_id=report.operator_national_id,
            name=" ".join(p for p in (account.get("given_name"), account.get("family_name")) if p) or None,
            family_name=account.get("family_name"), given_name=account.get("given_name"), email=account.get("email"),
            territory=territory)
        effecteur = self._effecteur(report, offer)
        category = report.category or KIND_CATEGORY.get(offer.get("kind") or "", None) or (
            "SOS" if report.status == "pending" and not report.practitioner_national_id else "PS")
        doc = OrientationDoc(
            id=orientation_id, created_at=report.created or now, updated_at=now,
            consultation_start=report.start, consultation_end=report.end, regulator=regulator, effecteur=effecteur,
            offer_id=offer.get("id"), place_address=(offer.get("address") or {}).get("text"), territory=territory,
            category=category, source="vendor", booking_mode="reported", vendor=vendor,
            vendor_appointment_system=report.system, vendor_appointment_id=report.value, status=report.status,
            status_history=[StatusChange(status=report.status, at=now, by=by)], flags=["unmatched_report"],
        )
        document, created = self.orientations.record(doc)
        if not created:          # a simultaneous report created it first: apply ours as an update
            document, _ = self.orientations.change(orientation_id, by=by, status=report.status)
        return document, created

    @staticmethod
    def _effecteur(report: AppointmentReport, offer: dict) -> OrientationEffecteur:
        specialties = offer.get("specialties") or []
        return OrientationEffecteur(
            national_id=report.practitioner_national_id, name=offer.get("name") or report.practitioner_display,
            family_name=offer.get("last_name"), given_name=offer.get("first_name"),
            specialty=report.specialty or (specialties[0] if specialties else None),
            profession_code=offer.get("profession_code"), territory=offer.get("territory"))

    def _effecteur_fields(self, current: dict, report: AppointmentReport) -> dict:
        """``{"effecteur": …}`` when the report names a practitioner the orientation does not have yet (an
        SOS Médecins appointment ``pending`` until the association assigns its doctor) or another one (the
        vendor knows who sees the patient); ``{}`` otherwise: a report without practitioner never erases one."""
        national_id = report.practitioner_national_id
        if not national_id:
            return {}
        known = current.get("effecteur") or {}
        if known.get("national_id") == national_id:
            if report.specialty and not known.get("specialty"):
                return {"effecteur": {**known, "specialty": report.specialty}}
            return {}
        vendor = str(current.get("vendor") or "")
        self._check_served(vendor, national_id)     # naming another practitioner: one this vendor serves too
        return {"effecteur": self._effecteur(report, self._offer(national_id)).model_dump(mode="json")}

    # -- what a vendor may report -----------------------------------------------------------------------

    def _check_served(self, vendor: str, national_id: str | None) -> None:
        config = next((v for v in self.vendors() if v.name == vendor), None)
        if national_id is None:
            # A pending SOS Médecins appointment whose doctor the association has not assigned yet.
            if config is None or "sos" not in config.use_cases:
                raise FhirInvalid(422, [Issue("error", "business-rule",
                                              f"vendor {vendor!r} does not serve SOS Médecins: the appointment "
                                              "must name its practitioner", "Appointment.participant.actor")])
            return
        if not self.serves(vendor, national_id, config=config):
            raise FhirInvalid(422, [Issue(
                "error", "business-rule",
                f"practitioner {national_id} is not served by vendor {vendor!r} (not in its roster, offers or slots)",
                "Appointment.participant.actor.identifier.value")])

    def serves(self, vendor: str, national_id: str, *, config: VendorConfig | None = None) -> bool:
        """Whether the platform knows ``vendor`` as the agenda of practitioner ``national_id``."""
        if config is not None and national_id in config.practitioner_ids:
            return True
        offers = self.store.search("offers", queries.practitioner_offers_body(national_id=national_id))["hits"]["hits"]
        associations: set[str] = set()
        for hit in offers:
            source = hit["_source"]
            if (source.get("sas") or {}).get("vendor") == vendor:
                return True
            siret = siret_bare((source.get("sos") or {}).get("association_siret"))
            if siret:
                associations.add(siret)
        if associations and config is not None and associations.intersection(config.sos_ids):
            return True
        if associations and self.store.first("offers", queries.vendor_sos_association_body(
                vendor=vendor, sirets=sorted(associations | _wire_sirets(associations)))) is not None:
            return True
        return self.store.first("slots", queries.vendor_practitioner_slot_body(
            vendor=vendor, national_id=national_id)) is not None

    @staticmethod
    def _check_operator(account: dict, report: AppointmentReport) -> None:
        identifier = report.operator_national_id or report.operator_account_id
        if not account:
            raise FhirInvalid(422, [Issue("error", "business-rule",
                                          f"the regulator {identifier} ({report.operator_type}) is not an account "
                                          "of the platform", "Appointment.extension.valueReference.identifier")])
        removed = account.get("removed_at")
        if removed and not (report.created and report.created <= datetime.fromisoformat(str(removed))):
            # Vendors were told this account is inactive (INT_R02): only an appointment made before counts.
            raise FhirInvalid(422, [Issue("error", "business-rule", f"the regulator {identifier} was removed",
                                          "Appointment.extension.valueReference.identifier")])

    def _account(self, report: AppointmentReport) -> dict:
        if report.operator_account_id:
            # Vendors name the account by its INTRN UUID; documents written before platform_id existed are
            # keyed by it when the subject was a UUID.
            hit = self.store.first("accounts",
                                   queries.account_by_platform_id_body(platform_id=report.operator_account_id))
            if hit is not None:
                return hit.source
            found = self.store.get("accounts", report.operator_account_id)
            return found.source if found is not None else {}
        if report.operator_national_id:
            hit = self.store.first("accounts", queries.operator_account_body(national_id=report.operator_national_id))
            return hit.source if hit is not None else {}
        return {}

    def _offer(self, national_id: str | None) -> dict:
        if not national_id:
            return {}
        hit = self.store.first("offers", queries.first_offer_body(national_id=national_id))
        return hit.source if hit is not None else {}


class _Taken(Exception):
    pass


def _wire_sirets(sirets: set[str]) -> set[str]:
    """The wire form (``3`` + SIRET) of bare SIRETs."""
    return {wire for siret in sirets if (wire := siret_wire(siret)) is not None}
