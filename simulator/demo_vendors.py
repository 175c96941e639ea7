"""The scheduling vendors ("éditeurs") of the demo: one fixed list shared by the directory generator
(which practitioner has which connected agenda), the vendor simulator (``sas simulate vendors`` without
offers) and the harvest benchmark.

The names are invented for the demo (the real platform is interfaced with some 24 products); ``id`` is
the stable slug used in data files and in the ``sas.vendor`` field of offers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DemoVendor:
    id: str
    name: str


DEMO_VENDORS: tuple[DemoVendor, ...] = (
    DemoVendor("agendomed", "AgendoMed"),
    DemoVendor("rdvsante", "RDV Santé Connect"),
    DemoVendor("medicalendar", "MediCalendar"),
    DemoVendor("docplanning", "DocPlanning"),
    DemoVendor("cabinetplus", "Cabinet+ Agenda"),
    DemoVendor("santeagenda", "SantéAgenda"),
    DemoVendor("clicrdv-pro", "ClicRDV Pro"),
    DemoVendor("praticien360", "Praticien 360"),
    DemoVendor("medirdv", "MédiRDV"),
    DemoVendor("soinsdirect", "Soins Direct"),
    DemoVendor("agenda-liberal", "Agenda Libéral"),
    DemoVendor("medisoft-rdv", "MediSoft RDV"),
    DemoVendor("cpts-planning", "CPTS Planning"),
    DemoVendor("sosplanning", "SOS Planning"),
    DemoVendor("hellodoc", "HelloDoc Agenda"),
    DemoVendor("consultis", "Consultis"),
    DemoVendor("rdvmedical", "RDV Médical"),
    DemoVendor("omnidoc-agenda", "OmniDoc Agenda"),
    DemoVendor("secretariat-med", "Secrétariat Médical en ligne"),
    DemoVendor("terrisante", "TerriSanté"),
)

DEMO_VENDOR_IDS: tuple[str, ...] = tuple(v.id for v in DEMO_VENDORS)


def vendor_name(vendor_id: str) -> str | None:
    """Display name of a demo vendor id (``None`` when unknown)."""
    for vendor in DEMO_VENDORS:
        if vendor.id == vendor_id:
            return vendor.name
    return None
