"""``POST /v1/bookings`` (book a slot for a patient) and ``POST /v1/bookings/beyond`` (orient to a
practitioner who accepts patients beyond his displayed slots). Modes and guarantees:
``search_api.workflow.booking``."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from connectors.vendor_appointments import PatientDetails
from search_api.auth import Principal, Role
from search_api.deps import roles
from search_api.services import WorkflowDep
from search_api.validation import Moment
from search_api.workflow.booking import BookingRequest, BookingResult

router = APIRouter(prefix="/v1/bookings", tags=["bookings"])
Booker = Annotated[Principal, Depends(roles(Role.REGULATOR, Role.OSNP, Role.ADMIN))]
IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=8, max_length=200,
                                       description="A key of your own per booking: retries with the same key "
                                                   "return the same booking, never a second one")]


class PatientIn(BaseModel):
    """Forwarded to vendors that take it when the platform creates the appointment; never stored,
    indexed or logged by the platform."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    family_name: str | None = Field(None, max_length=100, repr=False)
    given_name: str | None = Field(None, max_length=100, repr=False)
    birth_date: date | None = Field(None, repr=False)
    phone: str | None = Field(None, max_length=30, pattern=r"^[+0-9 .()-]{6,30}$", repr=False)
    email: str | None = Field(None, max_length=200, repr=False)

    def details(self) -> PatientDetails:
        return PatientDetails(family_name=self.family_name, given_name=self.given_name,
                              birth_date=self.birth_date.isoformat() if self.birth_date else None,
                              phone=self.phone, email=self.email)


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    slot_id: str = Field(min_length=3, max_length=300, examples=["acme:slot-810100050075-1"])
    territory: str | None = Field(None, description="The SAS you book for, when you work for several",
                                  examples=["SAS-47"])
    mode: Literal["auto", "redirect", "appointment"] = Field(
        "auto", description="auto: create the appointment at the vendor when it allows it, else redirect")
    patient: PatientIn | None = None


class BeyondIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offer_id: str = Field(min_length=3, max_length=300)
    territory: str | None = None
    consultation_start: Moment | None = Field(None, description="When agreed on the phone, if known")


def _answer(result: BookingResult) -> JSONResponse:
    body: dict[str, Any] = {
        "orientation": result.orientation,
        "booking_url": result.booking_url,
        "phone": result.phone,
        "mode": result.orientation.get("booking_mode"),
        "status": result.orientation.get("status"),
        "warnings": result.warnings,
        "replayed": result.replayed,
    }
    return JSONResponse(body, status_code=200 if result.replayed else 201)


@router.post("", status_code=201, summary="Book a slot for a patient (redirect or proxied appointment)",
             responses={409: {"description": "slot taken, full, over, or gone at the vendor"},
                        404: {"description": "unknown slot"}})
def book(body: BookingIn, principal: Booker, workflow: WorkflowDep, idempotency_key: IdempotencyKey) -> JSONResponse:
    request = BookingRequest(slot_id=body.slot_id, idempotency_key=idempotency_key, territory=body.territory,
                             mode=body.mode, patient=body.patient.details() if body.patient else None)
    return _answer(workflow.booking.book(principal, request))


@router.post("/beyond", status_code=201, summary="Orient to a practitioner beyond his displayed slots (en sus)")
def book_beyond(body: BeyondIn, principal: Booker, workflow: WorkflowDep,
                idempotency_key: IdempotencyKey) -> JSONResponse:
    result = workflow.booking.book_beyond(principal, offer_id=body.offer_id, idempotency_key=idempotency_key,
                                          territory=body.territory, consultation_start=body.consultation_start)
    return _answer(result)
