"""Platform settings, read from the environment (prefix ``SAS_``) by pydantic-settings.

One class per component (Elasticsearch, the local node, auth, the API, the web pages, the directory load,
the harvest, the regulation workflow, the INT_R03 listener…); ``Settings`` is their union, built once by
the CLI or the app factory, which hands each component only its slice (``settings.slice(HarvestSettings)``),
so a component cannot come to depend on a tunable that is not its own. Every variable keeps its name:
``SAS_<FIELD NAME IN CAPITALS>``.

Nothing here connects anywhere or reads a file when imported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, TypeVar, cast
from urllib.parse import urlparse

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository checkout this package runs from (editable install).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The reference tables the project carries (communes with every postal code, TRE_R38): a bare clone runs
#: with nothing beside it; deployments refresh their own copy (``sas reference download --to``).
PACKAGED_REFERENCE_DATA_DIR = PROJECT_ROOT / "connectors" / "reference_data"

_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")


def default_reference_data_dir() -> Path:
    """The project's own copy of the reference tables (never a folder beside the checkout)."""
    return PACKAGED_REFERENCE_DATA_DIR


class FhirClientSubject(BaseModel):
    """One accepted INT_R03 client certificate subject: its CN, one of its OU values, and the vendor
    (vendors registry name) it authenticates."""

    model_config = ConfigDict(extra="forbid")

    vendor: str = Field(min_length=1)
    cn: str = Field(min_length=1)
    ou: str = Field(min_length=1)


class _Component(BaseSettings):
    """A component's settings: read from ``SAS_*`` variables like the whole."""

    model_config = SettingsConfigDict(env_prefix="SAS_", extra="ignore", populate_by_name=True)


class StorageSettings(_Component):
    """Where this machine keeps the platform's working files and reference tables."""

    cache_dir: Path = Path.home() / ".cache" / "sas"
    reference_data_dir: Path | None = Field(default_factory=default_reference_data_dir)


class IndicesSettings(_Component):
    """Which indices are ours, and how long one Elasticsearch request may take: what every component that
    reads or writes them needs (the connection itself is the client factory's, ``ElasticsearchSettings``)."""

    #: Every index and alias name starts with ``<index_prefix>-``.
    index_prefix: str = "sas"
    es_request_timeout_s: float = 10.0

    @field_validator("index_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _PREFIX_RE.match(value):
            raise ValueError(
                "SAS_INDEX_PREFIX must be lowercase letters, digits, '-' or '_' (Elasticsearch index naming)"
            )
        return value


class LoggingSettings(_Component):
    """How every process logs (the API, the scheduler and its harvest worker processes alike)."""

    log_level: str = "INFO"
    log_json: bool = True


class GeocoderSettings(StorageSettings):
    """Placing an address when the address base has no answer: the national address API and its cache (the
    directory load, and the harvest for the places only a vendor knows)."""

    #: National address API (BAN) for geocoding, e.g. https://api-adresse.data.gouv.fr; off when empty.
    geocoder_ban_url: str | None = None
    geocoder_ban_timeout_s: float = 5.0
    geocoder_ban_min_score: float = 0.5
    #: SQLite cache of BAN answers (default ``<cache_dir>/geocode-ban.sqlite``).
    geocoder_cache_path: Path | None = None


class ElasticsearchSettings(IndicesSettings):
    """How to reach Elasticsearch (the client factory, ``sas_core.es``) and which indices are ours."""

    es_url: str = "http://127.0.0.1:9200"
    #: Every node of the cluster the client may send requests to (``SAS_ES_URLS='["http://a:9200", …]'``);
    #: empty means ``es_url`` alone. With several, the client moves a request that failed to connect to the
    #: next node, so losing one node of a cluster does not fail requests the others can answer.
    es_urls: list[str] = []
    es_username: str | None = None
    es_password: SecretStr | None = None
    es_api_key: SecretStr | None = None
    es_ca_certs: Path | None = None
    es_verify_certs: bool = True

    @property
    def es_port(self) -> int:
        """Port of ``es_url`` (what the local node listens on)."""
        parsed = urlparse(self.es_url)
        return parsed.port or (443 if parsed.scheme == "https" else 9200)

    @property
    def es_is_loopback(self) -> bool:
        """Whether ``es_url`` points at this machine (only then may ``sas es start`` run a node)."""
        host = urlparse(self.es_url).hostname or ""
        return host in {"127.0.0.1", "localhost", "::1"}


class LocalNodeSettings(ElasticsearchSettings, StorageSettings):
    """The unprivileged local node of ``sas es start`` and its snapshot repository."""

    #: Where the unprivileged node keeps its install, data, logs and snapshot repository.
    es_home: Path = Path("/var/lib/sas-es")
    es_heap: str = "2g"
    es_system_user: str = "sas-es"
    es_java_home: Path | None = None
    #: Snapshot repository name (default ``<prefix>-backups``) and location; a relative location is
    #: resolved by Elasticsearch inside its ``path.repo``.
    snapshot_repository: str | None = None
    snapshot_location: str | None = None


class LocalClusterSettings(LocalNodeSettings):
    """The local multi-node cluster of ``sas es cluster`` (the topology of compose.yaml's ``cluster`` profile,
    as processes of this machine): it never uses the single node's ports, home or pid file."""

    #: Install, and one folder per node (config, data, logs, pid), of the cluster's nodes.
    es_cluster_home: Path = Path("/var/lib/sas-es-cluster")
    #: Three master-eligible data nodes: a majority (2) survives the loss of any one, as in compose.yaml.
    es_cluster_nodes: int = Field(default=3, ge=1, le=9)
    #: First HTTP and transport ports (node i uses port + i): 9221-9223 / 9321-9323 stay clear of the single
    #: node (9200/9300) and of the test nodes of tests/resilience (9250-9299 / 9350-9399).
    es_cluster_http_port: int = 9221
    es_cluster_transport_port: int = 9321
    #: Small heaps: three nodes share one development machine with the single node (2 GB) and its tests.
    es_cluster_heap: str = "512m"
    es_cluster_name: str = "sas-cluster"
    #: JIT of the local nodes: the client compiler only (``-XX:TieredStopAtLevel=1``). Three JVMs sharing one
    #: machine's cores (two here) spent minutes of 20-45 % of a core each in the optimising compiler after a
    #: start, and a returned node's warm-up (plus the survivors' recompilation) starved every node's searches:
    #: measured in tests/cluster and README "Cluster". Nodes on machines of their own (compose.yaml) keep the
    #: JVM's default tiered compilation. False: the default here too.
    es_cluster_jit_client_only: bool = True


class KibanaSettings(_Component):
    """``sas kibana import``: where Kibana is and how to sign in."""

    #: Kibana base URL, e.g. http://127.0.0.1:5601; credentials: basic user + password, or an API key.
    kibana_url: str = "http://127.0.0.1:5601"
    kibana_username: str | None = None
    kibana_password: SecretStr | None = None
    kibana_api_key: SecretStr | None = None
    #: Kibana space the saved objects go to (default space when empty).
    kibana_space: str | None = None
    kibana_timeout_s: float = 30.0


class VendorsFileSettings(_Component):
    """The vendors registry file (YAML): who the scheduling vendors are and how to reach them."""

    #: ``SAS_VENDORS_FILE``. ``SAS_EDITORS_FILE`` (the variable's former name) is still read, so that existing
    #: deployments keep working; the new name wins when both are set.
    vendors_file: Path | None = Field(default=None, validation_alias=AliasChoices(
        "SAS_VENDORS_FILE", "SAS_EDITORS_FILE", "vendors_file"))


class AuthSettings(StorageSettings):
    """Who may call: bearer tokens (dev HS256 or OIDC), API keys, rate limits per caller."""

    auth_mode: Literal["dev", "oidc"] = "dev"
    #: HS256 key of dev mode; when empty, one is generated once into ``<cache_dir>/dev-signing-key``.
    dev_signing_key: SecretStr | None = None
    token_ttl_s: int = 12 * 3600
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_algorithms: list[str] = ["RS256", "ES256", "PS256"]
    jwt_leeway_s: int = 30
    #: Key sets are cached; a token naming an unknown key id forces one refetch at most this often.
    oidc_jwks_cache_s: int = 3600
    oidc_jwks_refresh_cooldown_s: float = 30.0
    #: Per token / API key, in the ``limits`` notation ("30/second;600/minute"), for the whole platform:
    #: each API replica allows its share, ``ceil(limit / replicas alive)`` (``search_api.ratelimit``).
    rate_limit: str = "20/second;600/minute"
    #: Divide ``rate_limit`` and ``auth_failure_limit`` by the API replicas alive (counted in
    #: Elasticsearch). On by default: without it a caller spreading requests over N replicas gets N times
    #: the limit. Off: each replica allows the whole limit (one replica, or a sticky proxy).
    rate_limit_split_replicas: bool = True
    #: Verified API keys are cached this long: a revocation takes effect within this delay.
    api_key_cache_s: float = 5.0
    #: Failed authentications (bad bearer token or API key) allowed per client address in the ``limits``
    #: notation; past that, credentials not verified lately get 429 + Retry-After without being checked.
    #: Empty: no throttling.
    auth_failure_limit: str = "20/minute"


class ApiSettings(IndicesSettings, LoggingSettings):
    """The HTTP service (``sas serve``): where it listens, what it accepts, how it sheds load."""

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_base_url: str | None = None
    #: ``Host`` values the API answers (Starlette TrustedHostMiddleware, ``*.example.fr`` allowed; others get
    #: 400); empty: no check. OIDC mode needs ``SAS_PUBLIC_BASE_URL`` (start-up error otherwise).
    allowed_hosts: list[str] = []
    #: Sites allowed to embed the search from a browser (CORS allow-list); empty: none.
    cors_allow_origins: list[str] = []
    #: Largest request body (bytes) of a JSON command or a web form; larger: 413 before the body is read
    #: (``Content-Length``) or as soon as the streamed bytes pass it (chunked).
    max_body_bytes: int = Field(default=16 * 1024, ge=1024)
    #: ``/v1/agenda/*``: one call publishes up to 500 slots (680 KB with 200-character motives written
    #: as ``\\u`` escapes, the largest legitimate call).
    max_agenda_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    #: ``/fhir/*`` (INT_R03, main app and ``sas fhir serve``): one Appointment resource.
    max_fhir_body_bytes: int = Field(default=64 * 1024, ge=1024)
    #: ``/readyz`` answers from the last readiness probe younger than this (its own client and thread,
    #: never the request thread pool); an older one is refreshed in the background and still served
    #: up to ``readiness_stale_s``; past that (or at the first call) the probe is awaited at most
    #: ``readiness_wait_s`` before answering 503.
    readiness_cache_s: float = Field(default=1.0, ge=0)
    readiness_stale_s: float = Field(default=15.0, ge=0)
    readiness_wait_s: float = Field(default=1.0, gt=0)
    #: Searches admitted at once by one API process (in the thread pool or waiting for it); the next one
    #: gets 503 + Retry-After at once instead of queueing until p99 reaches seconds. 0: no limit.
    max_concurrent_searches: int = Field(default=64, ge=0)
    search_shed_retry_after_s: int = Field(default=1, ge=1)
    #: An API replica's membership (``search_api.replicas``, what the rate limits divide by) lasts this
    #: long unless renewed (every third of it): a killed replica's share goes back to the others within it.
    #: 15 s: a few ES writes a minute per replica, and a dead replica's callers throttled 15 s at most.
    api_replica_ttl_s: float = Field(default=15.0, ge=1)
    stale_after_s: int = 15 * 60
    #: A balanced search whose place matched more slots than this the last time is ranked in two passes
    #: (``search_api.query.search``, "Two passes"); unset: the measured default,
    #: ``search_api.query.defaults.TWO_PASSES_FROM_SLOTS``. 0: every balanced search seen before.
    search_two_passes_from_slots: int | None = Field(default=None, ge=0)
    #: Whether a balanced search with no radius hint yet starts as a dense one (counts, earliest start, first
    #: pass); unset: ``search_api.query.defaults.TWO_PASSES_WHEN_UNKNOWN``.
    search_two_passes_when_unknown: bool | None = None
    #: The counts of a search ranked in two passes stop after this many matching slots ("plus de" on the page);
    #: unset: ``search_api.query.defaults.COUNT_MAX_SLOTS``; 0: exact counts.
    search_count_max_slots: int | None = Field(default=None, ge=0)


class WebSettings(_Component):
    """The operators' web pages: OIDC login, server-side sessions, map tiles, the address box."""

    #: OIDC authorisation-code flow of the web login (auth_mode=oidc).
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_authorize_url: str | None = None
    oidc_token_url: str | None = None
    oidc_scopes: str = "openid profile"
    #: Key signing the web session cookie; dev mode falls back to the dev signing key.
    web_session_secret: SecretStr | None = None
    #: Set the Secure flag on the session cookie (production behind HTTPS).
    web_cookie_secure: bool = False
    #: Server-side web sessions (index ``web_sessions``): one ends after this many seconds without a request…
    web_session_idle_s: int = Field(default=30 * 60, ge=60)
    #: …and at the latest this long after login (or when the token it was opened with expires, if sooner).
    web_session_max_s: int = Field(default=12 * 3600, ge=60)
    #: Map tiles (Leaflet URL template, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png); no tiles when empty.
    web_tile_url: str | None = None
    web_tile_attribution: str = ""
    #: Suggestions of the operator's address box: how many addresses / streets at most.
    addresses_suggest_limit: int = Field(default=6, ge=0, le=20)


class DirectorySettings(IndicesSettings, GeocoderSettings):
    """The national directory load (RPPS / FINESS / Annuaire Santé), geocoding and the address base."""

    directory_reject_threshold: float = 0.2
    #: The early rejected-share check waits for this many lines (the final check always runs).
    directory_reject_min_lines: int = 10_000
    directory_bulk_chunk: int = 2500
    directory_bulk_threads: int = 2
    #: A full load may delete at most this share of the offers of its sources (offers gone from the file);
    #: beyond, it fails and deletes nothing. Weekly churn of the national extraction is well under 1 %.
    directory_max_delete_share: float = Field(default=0.05, ge=0.0, le=1.0)
    #: ... but may always delete this many (small départemental loads, where one place is already >5 %).
    directory_max_delete_floor: int = Field(default=50, ge=0)
    #: Bulk requests of the BAN load: lines per request and requests in flight.
    addresses_bulk_chunk: int = Field(default=5000, ge=100, le=50_000)
    addresses_bulk_threads: int = Field(default=3, ge=1, le=16)
    #: A BAN file whose rejected share exceeds this is refused (after what was already written).
    addresses_reject_threshold: float = Field(default=0.05, ge=0.0, le=1.0)
    #: `sas addresses load --prune` deletes at most this share of a département's documents (else fails).
    addresses_max_delete_share: float = Field(default=0.05, ge=0.0, le=1.0)
    #: The directory load looks practice places up in the `addresses` index this many at a time.
    addresses_lookup_batch: int = Field(default=2000, ge=1, le=5000)
    #: Whether the directory load places practice places at their address when the index has addresses.
    addresses_geocode_directory: bool = True
    #: Annuaire Santé FHIR API (incremental directory updates), e.g. https://gateway.api.esante.gouv.fr/fhir/v2
    annuaire_fhir_url: str | None = None
    annuaire_fhir_api_key: SecretStr | None = None
    annuaire_fhir_page_size: int = 500


class HarvestSettings(IndicesSettings, LoggingSettings, VendorsFileSettings, GeocoderSettings):
    """Harvesting the vendors' free slots and the scheduler that runs it."""

    #: Schedule jobs for vendor harvests (the per-vendor cadence lives in the vendors file).
    harvest_enabled: bool = True
    #: Slots per bulk request, and bulk requests in flight, when writing harvested slots.
    harvest_bulk_chunk: int = 5000
    harvest_bulk_threads: int = 2
    #: Vendors harvested at once by the scheduler (each with its own per-vendor concurrency).
    harvest_max_parallel_vendors: int = 4
    #: Harvester worker processes of the scheduler (``indexer.harvest_workers``): mapping slots is
    #: CPU-bound Python, so one process uses one core at most. 0: every run in the scheduler's process.
    #: A national deployment sets it to ``harvest_max_parallel_vendors``.
    harvest_worker_processes: int = Field(default=0, ge=0, le=64)
    #: Leader lease of the scheduler (renewed every third of it) and per-vendor run lease (also renewed
    #: every third of it while the run goes on: a killed run blocks its vendor this long at most).
    leader_lock_ttl_s: int = 30
    harvest_run_lock_ttl_s: int = Field(default=30, ge=3)
    #: ``sas scheduler`` serves its own Prometheus metrics (per-vendor harvest figures) on this port; off
    #: when unset. (``sas serve`` with the scheduler in-process shows them on the API's ``/metrics``.)
    scheduler_metrics_port: int | None = None
    scheduler_metrics_host: str = "127.0.0.1"
    #: Daily directory refresh (UTC hour) run by the scheduler's leader.
    directory_refresh_hour_utc: int = 3
    #: A batch (or a whole run) that would delete more than this share of the vendor's slots it had
    #: indexed is not trusted (an empty answer from a vendor-side bug would wipe the vendor): its
    #: deletions are held, the slots marked stale, the run recorded ``partial`` with the reason.
    harvest_mass_delete_share: float = Field(default=0.5, gt=0, le=1)
    #: ... but only from this many deletions on (per batch, and per run): a vendor with 3 slots
    #: losing 2 is normal business, deleted at once.
    harvest_mass_delete_min: int = Field(default=20, ge=1)
    #: First full sweep of every vendor this long after the scheduler starts (then every
    #: ``full_every_min``): a restart must not leave days 3-7 unharvested for an hour. 60 s lets the
    #: leader lease settle and the first incremental runs (which come first, within seconds) finish.
    harvest_first_full_delay_s: float = Field(default=60.0, ge=0)
    #: Keep, per vendor, a copy of what this process indexed between runs (``indexer.harvest.indexed_book``):
    #: an incremental run then reads from Elasticsearch only what entered its window since the last run,
    #: not the whole window. Off: every run scans its window (memory: about 330 bytes per slot of the
    #: vendor's incremental windows, held between runs instead of during each).
    harvest_indexed_copy: bool = True
    #: ... each time range of it trusted this long at most, then read again (what the checks against
    #: outside writes cannot see, a stale mark edited by hand, lasts no longer).
    harvest_indexed_copy_max_age_s: float = Field(default=900.0, ge=0)
    #: Where ``sas simulate vendors`` listens (and where ``make run`` points the demo vendors file).
    simulator_host: str = "127.0.0.1"
    simulator_port: int = 8400


class WorkflowSettings(IndicesSettings, VendorsFileSettings):
    """After the search: bookings, orientations, reports, the platform agenda, INT_R02, INT_L01 and INT_L02."""

    #: Deadline of the "is this slot still free?" question asked to the vendor before a booking.
    booking_recheck_timeout_s: float = 2.0
    #: Vendors that let the platform create the Appointment itself (proxied mode); every other vendor
    #: is booked in redirect mode (the vendor's booking page with ``origin=sas``, the national default).
    booking_appointment_vendors: list[str] = []
    #: Timeout of the proxied Appointment creation at the vendor.
    booking_appointment_timeout_s: float = 5.0
    #: A booking in progress holds its Idempotency-Key this long at most (crash safety).
    booking_lease_s: int = 30
    #: A vendor slot claimed by a booking stays hidden this long at least without an INT_R03 report;
    #: past it, the first harvest that still sees the slot free at the vendor shows it again (an
    #: abandoned redirect booking no longer hides a free slot until it starts). 15 min: well beyond a
    #: booking on the vendor's page plus its near-real-time report, short against a day of slots.
    redirect_claim_lease_s: int = Field(900, ge=1)
    #: A regulator's / OSNP's "unavailable" report hides a practitioner at most this long from now
    #: (a report ending later is refused with 422; only the practitioner declares himself away for longer).
    report_max_hours: int = Field(default=72, ge=1, le=24 * 31)
    #: Reports (every kind) one author may file per rolling hour; the next one gets 429.
    reports_per_hour: int = Field(default=30, ge=1)
    #: Platform agenda (POST /v1/agenda/slots): items per call, how far ahead a slot may start, and how
    #: many future platform-agenda slots one offer may hold at once.
    agenda_max_items: int = Field(default=100, ge=1, le=500)
    agenda_horizon_days: int = Field(default=90, ge=1, le=366)
    agenda_max_future_slots: int = Field(default=1000, ge=1)
    #: INT_R02: attempts per vendor request (first + retries) and request timeout.
    account_sync_attempts: int = 3
    account_sync_timeout_s: float = 5.0
    #: The regulation software's ``origin`` values accepted (Hub Santé SAMU ids, ``fr.health.samu330``).
    #: Empty: the SAMU of every département the platform knows (``sas_core.territories.known_samu_ids``);
    #: set it to switch the contextual call off for the SAMU left out (they get a clear refusal).
    contextual_origins: list[str] = []
    #: The platform's client id on the Hub: EDXL senderID, distributionID prefix, routing key, the CN of
    #: its client certificate and the prefix of its queues. ``fr.health.ptfsas`` in production only.
    lrm_sender_id: str = "fr.health.test.ptfsas"
    #: The Hub's AMQPS endpoint (host; INT_L02 is off when empty), port and vhost (per environment and
    #: use-case version; the Hub's client examples use ``15-15_v2.0``).
    lrm_hub_host: str | None = None
    lrm_hub_port: int = 5671
    lrm_hub_vhost: str = "15-15_v2.0"
    #: The Hub's exchange; the routing key is the sender id unless set (the Hub accepts no other).
    lrm_exchange: str = "hubsante"
    lrm_routing_key: str | None = None
    #: Mutual TLS with the Hub: the platform's certificate (IGC-Santé) and key, the CA of the Hub's
    #: certificate, and the name checked in it (default: the host). SASL EXTERNAL: no password.
    lrm_tls_cert: Path | None = None
    lrm_tls_key: Path | None = None
    lrm_tls_ca: Path | None = None
    lrm_tls_server_name: str | None = None
    #: Consume ``{sender id}.ack`` / ``.info`` in the API process (the delivery state of each message).
    lrm_listen: bool = True
    #: Messages not delivered within this delay are dropped by the Hub (EDXL dateTimeExpires).
    lrm_message_ttl_s: int = 24 * 3600
    #: Publications waiting in memory at most (a broker outage longer than that loses the oldest).
    lrm_queue_size: int = 10_000

    @field_validator("contextual_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        # Imported here: territories reads its table lazily, and settings must stay free of I/O at import.
        from sas_core.territories import known_samu_ids, normalise_samu_id

        ids = [normalise_samu_id(v) for v in value]
        unknown = sorted(set(ids) - set(known_samu_ids()))
        if unknown:
            raise ValueError(f"SAS_CONTEXTUAL_ORIGINS: not the SAMU of a known département: {unknown} "
                             "(expected fr.health.samu<département>0, e.g. fr.health.samu330, or fr.health.samu974)")
        return ids


class FhirListenerSettings(_Component):
    """The INT_R03 mutual-TLS listener (``sas fhir serve``) and the vendor certificates it accepts."""

    #: INT_R03 mutual-TLS listener (``sas fhir serve``): server certificate, key, the CA of the
    #: vendors' client certificates (IGC-Santé in production: its intermediate and root CAs), and its port.
    fhir_tls_cert: Path | None = None
    fhir_tls_key: Path | None = None
    fhir_tls_client_ca: Path | None = None
    #: CRL(s) of that CA (PEM, several concatenated, or one DER), required: a revoked certificate fails
    #: the handshake. Re-read when the file changes (replace it atomically), without restarting the listener.
    fhir_tls_client_crl: Path | None = None
    fhir_host: str = "127.0.0.1"
    fhir_port: int = 8443
    #: The client certificates accepted, each naming its vendor (the guide checks CN *and* OU), e.g.
    #: ``SAS_FHIR_CLIENT_SUBJECTS='[{"vendor": "medilib", "cn": "sas.medilib.fr", "ou": "318751275100020"}]'``.
    #: A certificate of the right CA whose (CN, OU) is not listed gets a 403 OperationOutcome.
    fhir_client_subjects: list[FhirClientSubject] = []


Component = TypeVar("Component", bound=_Component)


class Settings(
    LocalClusterSettings,
    LocalNodeSettings,
    ElasticsearchSettings,
    KibanaSettings,
    AuthSettings,
    ApiSettings,
    WebSettings,
    DirectorySettings,
    HarvestSettings,
    WorkflowSettings,
    FhirListenerSettings,
):
    """Every tunable of the platform: the union of the components' settings."""

    model_config = SettingsConfigDict(env_prefix="SAS_", extra="ignore", populate_by_name=True)

    def slice(self, component: type[Component]) -> Component:
        """This component's settings only, already validated here (nothing re-read from the environment)."""
        values = {name: getattr(self, name) for name in component.model_fields}
        # The pydantic plugin types ``model_construct`` by the class that declares it (``_Component``).
        return cast(Component, component.model_construct(**values))
