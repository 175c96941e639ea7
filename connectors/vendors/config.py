"""The vendors registry: a YAML file named by ``SAS_VENDORS_FILE``.

Example::

    defaults:                      # optional: applied to every vendor unless it says otherwise
      timeout_s: 7
    vendors:
      - name: acme                 # unique, lowercase letters, digits, '-' or '_'
        base_url: https://fhir.acme.example/sas
        use_cases: [ps, cpts]      # any of ps, cpts, sos
        roster: ["810100050075"]   # national ids; optional when offers name this vendor (sas.vendor)
        sos_roster: []             # SOS Médecins association SIRETs (use case sos; bare or 3-prefixed)
        tls: {cert: /etc/sas/acme.crt, key: /etc/sas/acme.key, ca: /etc/sas/igc-sante.pem}
        timeout_s: 7
        concurrency: 4
        rate_limit_per_s: 20
        tiers:                     # optional: freshness tiers (default below); each a run over its own window
          - {name: near, start_h: 0, end_h: 4, every_min: 0.5}
          - {name: mid, start_h: 4, end_h: 48, every_min: 10, slice_h: 22}
          - {name: far, start_h: 48, end_h: 168, every_min: 60, sweep: true, slice_h: 24}

Without ``tiers``, a vendor that sets ``incremental_every_min`` / ``incremental_window_h`` /
``full_every_min`` / ``full_window_days`` keeps their meaning: two tiers, ``incremental`` (the next
``incremental_window_h`` hours) and ``full`` (the next ``full_window_days`` days, a sweep).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sas_core.errors import ConfigurationError
from sas_core.structure_ids import siret_bare

UseCase = Literal["ps", "cpts", "sos"]


def _practitioners_only() -> list[UseCase]:
    """The default use cases of a vendor: practitioners' slots (INT_R01) alone."""
    return ["ps"]
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class TlsConfig(BaseModel):
    """Mutual TLS material: our client certificate and key, and the CA that signs the vendor's server."""

    model_config = ConfigDict(extra="forbid")

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    #: Verify the vendor's server certificate (only ever disabled against a local simulator).
    verify: bool = True

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> TlsConfig:
        # A certificate alone is fine (a PEM holding both); a key without certificate is not.
        if self.key is not None and self.cert is None:
            raise ValueError("tls.key given without tls.cert")
        return self


class TierConfig(BaseModel):
    """One freshness tier: the vendor's slots starting in [now + start_h, now + end_h] harvested every
    ``every_min`` minutes (see ARCHITECTURE.md, "Freshness", for the arithmetic of the defaults)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,30}$")
    start_h: float = Field(default=0.0, ge=0)
    end_h: float = Field(gt=0)
    every_min: float = Field(gt=0)
    #: A sweep retries batches lost to an outage within ``run_budget_s`` and asks for a catch-up run
    #: (the near tiers do not: their next run is minutes away, and they must not hold the vendor).
    sweep: bool = False
    #: A long tier runs as consecutive slices of at most ``slice_h`` hours, the vendor's lease given up
    #: between slices so that a nearer tier due meanwhile runs first (it waits one slice, never the
    #: whole sweep). ``None``: one run over the whole window.
    slice_h: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> TierConfig:
        if self.end_h <= self.start_h:
            raise ValueError(f"tier {self.name}: end_h must be after start_h")
        return self


def _default_tiers() -> list[TierConfig]:
    """Next 4 h every 30 s (taken-to-gone p95 = 0.95 x 30 s + the run + one slice, under 60 s), 4-48 h
    every 10 min in 22 h slices, 48 h-7 days hourly in 24 h slices: nationally 28,600 slots/s decoded
    on average instead of 53,200 for "48 h every 2 min + 7 days hourly" (ARCHITECTURE.md, "Freshness")."""
    return [TierConfig(name="near", start_h=0, end_h=4, every_min=0.5),
            TierConfig(name="mid", start_h=4, end_h=48, every_min=10, slice_h=22),
            TierConfig(name="far", start_h=48, end_h=168, every_min=60, sweep=True, slice_h=24)]


#: The keys of the two-tier schedule before tiers: a vendors file that sets one keeps its meaning.
LEGACY_SCHEDULE_KEYS = frozenset({"incremental_every_min", "incremental_window_h", "full_every_min",
                                  "full_window_days"})


class VendorConfig(BaseModel):
    """One vendor and how to talk to it. Every tunable has a default."""

    model_config = ConfigDict(extra="forbid")

    name: str
    base_url: str
    use_cases: list[UseCase] = Field(default_factory=_practitioners_only)
    roster: list[str] = []
    sos_roster: list[str] = []
    tls: TlsConfig | None = None
    enabled: bool = True
    #: Per-request timeout (connect, read, write, pool).
    timeout_s: float = 7.0
    #: Requests in flight at once towards this vendor.
    concurrency: int = Field(default=4, ge=1, le=64)
    #: Requests started per second at most (``None``: unlimited).
    rate_limit_per_s: float | None = Field(default=20.0, gt=0)
    #: Attempts per request (first + retries) on 429 / 5xx / timeouts.
    max_attempts: int = Field(default=4, ge=1, le=10)
    backoff_initial_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=8.0, ge=0)
    #: National ids per practitioner search (INT_R01 / INT_R04): the specification allows 1 to 25.
    batch_size: int = Field(default=25, ge=1, le=25)
    #: SIRETs per SOS Médecins search: the functional specification says 1 to 10 (its technical table
    #: 1 to 25, hence the bound); a vendor holding to the functional figure refuses more.
    sos_batch_size: int = Field(default=10, ge=1, le=25)
    #: ``_count`` page size asked for (vendors commonly honour 1000).
    page_size: int = Field(default=1000, ge=1, le=5000)
    #: Pages followed through ``link[next]`` at most for one request (protects against loops).
    max_pages: int = Field(default=50, ge=1)
    #: Circuit breaker: consecutive failed requests that open it, and how long it stays open.
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=60.0, gt=0)
    #: Waiting budget of one full sweep (seconds): batches that failed because the vendor was
    #: unavailable (breaker open, 5xx, timeouts) are retried once the breaker half-opens, as often as the
    #: time spent *waiting* for it (and for a last backoff round) stays within the budget. It bounds the
    #: waiting, not the sweep: a national sweep of one vendor lasts longer than any fixed budget, and an
    #: outage in its middle must still be waited out and the remaining batches resumed (a run lasts at
    #: most its sweep + this budget + the failed probes). 150 s leaves room for two half-open probes with
    #: the default 60 s breaker (a one-minute outage is recovered in the same run) and stays well under
    #: the hourly sweep; the run lease is renewed while waiting. A longer outage ends the run
    #: ``partial``, which asks for a catch-up run. Incremental runs do not wait (the next one, minutes
    #: later, retries; they must not hold the vendor's lease). 0: no retry.
    run_budget_s: float = Field(default=150.0, ge=0)
    #: Freshness tiers (``None``: the default three, or the two legacy ones when a legacy key below is set).
    tiers: list[TierConfig] | None = None
    #: Longest [start, end] window of one request: certified vendors are tested (SAS test kit) with
    #: windows capped at 72 h, so a longer tier asks several consecutive windows per batch.
    max_window_h: float = Field(default=72.0, gt=0)
    #: Legacy two-tier schedule: incremental harvest (next ``incremental_window_h`` hours) every N
    #: minutes, full sweep of ``full_window_days`` every ``full_every_min``.
    incremental_every_min: float = Field(default=2.0, gt=0)
    incremental_window_h: float = Field(default=48.0, gt=0)
    full_every_min: float = Field(default=60.0, gt=0)
    full_window_days: float = Field(default=7.0, gt=0)
    #: Offset written in the ``start`` parameters: ``+00:00`` is always valid; some vendors want local.
    query_utc_offset: str = "+00:00"

    @field_validator("tiers")
    @classmethod
    def _check_tiers(cls, value: list[TierConfig] | None) -> list[TierConfig] | None:
        if value is not None:
            if not value:
                raise ValueError("tiers must name at least one tier")
            names = [t.name for t in value]
            if len(set(names)) != len(names):
                raise ValueError(f"tier names must be unique: {names}")
        return value

    @property
    def schedule_tiers(self) -> list[TierConfig]:
        """The tiers harvested, nearest first (the scheduler's priority order)."""
        if self.tiers is not None:
            return sorted(self.tiers, key=lambda t: (t.start_h, t.every_min))
        if LEGACY_SCHEDULE_KEYS & self.model_fields_set:
            return [TierConfig(name="incremental", end_h=self.incremental_window_h,
                               every_min=self.incremental_every_min),
                    TierConfig(name="full", end_h=self.full_window_days * 24, every_min=self.full_every_min,
                               sweep=True)]
        return _default_tiers()

    def tier(self, name: str) -> TierConfig:
        """The tier called ``name``; the legacy names ``incremental`` / ``full`` always resolve (manual runs)."""
        for tier in self.schedule_tiers:
            if tier.name == name:
                return tier
        if name == "incremental":
            return TierConfig(name=name, end_h=self.incremental_window_h, every_min=self.incremental_every_min)
        if name == "full":
            return TierConfig(name=name, end_h=self.full_window_days * 24, every_min=self.full_every_min,
                              sweep=True)
        known = ", ".join(t.name for t in self.schedule_tiers)
        raise ConfigurationError(f"vendor {self.name}: unknown tier {name!r} (known: {known})")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError("vendor name must be lowercase letters, digits, '-' or '_' (it is part of slot ids)")
        return value

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("use_cases")
    @classmethod
    def _check_use_cases(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("use_cases must name at least one of ps, cpts, sos")
        return sorted(set(value), key=["ps", "cpts", "sos"].index)

    @field_validator("roster", "sos_roster")
    @classmethod
    def _check_ids(cls, value: list[str]) -> list[str]:
        cleaned = [str(v).strip() for v in value if str(v).strip()]
        bad = [v for v in cleaned if not v.isdigit()]
        if bad:
            raise ValueError(f"roster ids must be digits (national ids or SIRETs): {bad[:3]}")
        return list(dict.fromkeys(cleaned))

    @property
    def practitioner_search(self) -> Literal["ps", "cpts"] | None:
        """Which practitioner slot search to send: INT_R04 (a superset of INT_R01) when CPTS is on."""
        if "cpts" in self.use_cases:
            return "cpts"
        if "ps" in self.use_cases:
            return "ps"
        return None

    @property
    def sos_ids(self) -> list[str]:
        """SOS association SIRETs in the directory's bare form (14 digits, whichever form the file
        uses): ``sos_roster``, or ``roster`` when the vendor only does SOS. The query adds the prefix."""
        ids = self.sos_roster or (self.roster if self.use_cases == ["sos"] else [])
        return list(dict.fromkeys(bare for i in ids if (bare := siret_bare(i)) is not None))

    @property
    def practitioner_ids(self) -> list[str]:
        return [] if self.use_cases == ["sos"] else self.roster


class VendorsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: dict = {}
    vendors: list[dict] = []


def parse_vendors(data: object, *, source: str = "vendors file") -> list[VendorConfig]:
    """Validate the parsed YAML; raise ``ConfigurationError`` naming every problem."""
    if data is None:
        return []
    try:
        raw = VendorsFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"{source}: {exc}") from exc
    vendors: list[VendorConfig] = []
    problems: list[str] = []
    for position, item in enumerate(raw.vendors):
        merged = {**raw.defaults, **(item or {})}
        if isinstance(raw.defaults.get("tls"), dict) and isinstance((item or {}).get("tls"), dict):
            merged["tls"] = {**raw.defaults["tls"], **item["tls"]}
        try:
            vendors.append(VendorConfig.model_validate(merged))
        except ValidationError as exc:
            label = (item or {}).get("name", f"#{position + 1}")
            problems.append(f"vendor {label}: " + "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()))
    names = [v.name for v in vendors]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"duplicate vendor names: {', '.join(duplicates)}")
    if problems:
        raise ConfigurationError(f"{source}: " + " | ".join(problems))
    return vendors


def load_vendors(path: Path | None) -> list[VendorConfig]:
    """The vendors of ``path`` (``[]`` when no file is configured); relative TLS paths are resolved
    against the file's folder."""
    if path is None:
        return []
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"vendors file {path} does not exist (SAS_VENDORS_FILE)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"vendors file {path} is not valid YAML: {exc}") from exc
    vendors = parse_vendors(data, source=str(path))
    base = path.resolve().parent
    for vendor in vendors:
        if vendor.tls is not None:
            for attr in ("cert", "key", "ca"):
                value = getattr(vendor.tls, attr)
                if value is not None and not value.is_absolute():
                    setattr(vendor.tls, attr, base / value)
    return vendors


def find_vendor(vendors: list[VendorConfig], name: str) -> VendorConfig:
    """The vendor called ``name``; ``ConfigurationError`` listing the known names otherwise."""
    for vendor in vendors:
        if vendor.name == name:
            return vendor
    known = ", ".join(v.name for v in vendors) or "none"
    raise ConfigurationError(f"unknown vendor {name!r} (known: {known})")
