"""Addresses → coordinates, each point with its precision.

* The **communes gazetteer** (offline, the default and the fallback): the INSEE code when present, else
  postcode + city name after normalisation (accents, case, ``CEDEX``, ``ST``/``SAINT``, Paris / Lyon /
  Marseille arrondissements). Precision ``municipality`` (one commune: its centroid) or ``postcode``
  (the postcode is known but the city does not pick one of its communes: mean of their centroids).
* The **national address API** (BAN) through geopy's ``BANFrance`` when a URL is configured
  (``SAS_GEOCODER_BAN_URL``; off by default, these machines have no internet). Precision as BAN says:
  ``housenumber`` → ``address``, ``street`` / ``locality`` → ``street``, ``municipality``. A BAN answer
  that is weak or lands in another département, or a BAN failure, falls back to the gazetteer.

Results are cached (in memory for the gazetteer, in a small SQLite file for BAN answers, which cost a
request each). An address that cannot be placed gives a ``GeoFailure`` with its reason: the caller
reports it and keeps the offer out of geo search; no point is ever made up.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from connectors.directory.records import Address
from connectors.reference import Commune
from sas_core.text import fold

log = logging.getLogger(__name__)

#: Municipal districts: postcode → INSEE code of the arrondissement.
_PLM = {"paris": ("75", 20, 75100), "lyon": ("69", 9, 69380), "marseille": ("13", 16, 13200)}
_PLM_CITY_INSEE = {"75056": "paris", "69123": "lyon", "13055": "marseille"}
_ORDINAL = re.compile(r"^(\d{1,2})(?:er|e|eme|em|ieme|ème)?$")
_CEDEX = re.compile(r"\bcedex\b(?:\s*\d+)?")
_CP_CITY = re.compile(r"^\s*(\d{5})\s+(.+)$")
_WORD_REPLACE = {"st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes"}
_DROP_WORDS = {"arrondissement", "arr", "arrdt"}

BAN_PRECISION = {"housenumber": "address", "street": "street", "locality": "street", "municipality": "municipality"}


def normalize_city(name: str) -> str:
    """Comparable city key: ``"ST-ETIENNE CEDEX 1"`` → ``"saint etienne"``, ``"PARIS CEDEX 15"`` and
    ``"Paris 15e Arrondissement"`` → ``"paris 15"``."""
    text = fold(name)
    if not text:
        return ""
    tokens = text.split()
    plm = tokens[0] in _PLM
    words: list[str] = []
    number: str | None = None
    for token in tokens:
        if token == "cedex" or token in _DROP_WORDS:
            continue
        match = _ORDINAL.match(token)
        if match:
            number = match.group(1).lstrip("0") or "0"
            continue
        words.append(_WORD_REPLACE.get(token, token))
    if plm and number and len(words) == 1:
        # "PARIS CEDEX 15", "PARIS 15E": the number is the arrondissement.
        return f"{words[0]} {number}"
    return " ".join(words)


def district_for_postcode(postcode: str) -> str | None:
    """INSEE code of the Paris / Lyon / Marseille arrondissement a postcode serves (``75015`` → ``75115``)."""
    if len(postcode) != 5 or not postcode.isdigit():
        return None
    if postcode == "75116":
        return "75116"
    for prefix, count, base in _PLM.values():
        if postcode.startswith(prefix + "0"):
            number = int(postcode[2:])
            if 1 <= number <= count:
                return str(base + number)
    return None


def departements_of_postcode(postcode: str) -> tuple[str, ...]:
    """Départements a postcode can belong to (Corsica ``20xxx`` is 2A or 2B; overseas ``97x``)."""
    if len(postcode) != 5 or not postcode.isdigit():
        return ()
    if postcode.startswith("97") or postcode.startswith("98"):
        return (postcode[:3],)
    if postcode.startswith("20"):
        return ("2A", "2B")
    return (postcode[:2],)


@dataclass(frozen=True, slots=True)
class GeoResult:
    """A placed address."""

    lat: float
    lon: float
    precision: str          # address | street | municipality | postcode
    source: str             # gazetteer | ban
    insee: str | None = None
    postcode: str | None = None
    city: str | None = None
    departement: str | None = None


@dataclass(frozen=True, slots=True)
class GeoFailure:
    """An address that cannot be placed, and why."""

    reason: str             # no_address | unknown_commune | ambiguous_commune
    departement: str | None = None


class Gazetteer:
    """Offline geocoder over the communes table (see module doc)."""

    def __init__(self, communes: list[Commune]) -> None:
        self.by_insee: dict[str, Commune] = {}
        self.by_postcode: dict[str, list[Commune]] = {}
        self.by_dept_name: dict[tuple[str, str], list[Commune]] = {}
        self.by_name: dict[str, list[Commune]] = {}
        self.key_of: dict[str, str] = {}
        for commune in communes:
            self.by_insee[commune.insee] = commune
            for postcode in commune.postcodes:
                self.by_postcode.setdefault(postcode, []).append(commune)
            key = self.key_of[commune.insee] = normalize_city(commune.name)
            self.by_dept_name.setdefault((commune.departement, key), []).append(commune)
            self.by_name.setdefault(key, []).append(commune)
        self._cache: dict[tuple[str, str, str, str, str], GeoResult | GeoFailure] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.by_insee)

    @staticmethod
    def _point(commune: Commune, precision: str = "municipality") -> GeoResult:
        postcode = commune.postcodes[0] if commune.postcodes else None
        return GeoResult(commune.lat, commune.lon, precision, "gazetteer", commune.insee, postcode,
                         commune.name, commune.departement)

    def locate(self, *, postcode: str = "", insee: str = "", city: str = "", cedex_line: str = "",
               departement: str = "") -> GeoResult | GeoFailure:
        """Place a (postcode, INSEE code, city, "Bureau cedex" line) at commune level."""
        key = (postcode, insee, city, cedex_line, departement)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._locate(postcode.strip(), insee.strip().upper(), city.strip(), cedex_line.strip(),
                                  departement.strip().upper())
            with self._lock:
                self._cache[key] = cached
        return cached

    def _locate(self, postcode: str, insee: str, city: str, cedex_line: str,
                departement: str) -> GeoResult | GeoFailure:
        if not (postcode or insee or city or cedex_line):
            return GeoFailure("no_address", departement or None)
        # "Bureau cedex" holds "postcode CITY [CEDEX n]": the fallback for each missing piece.
        match = _CP_CITY.match(cedex_line) if cedex_line else None
        if match:
            postcode = postcode or match.group(1)
            city = city or match.group(2)
        if not city and cedex_line and not match:
            city = cedex_line
        city_key = normalize_city(city)
        cedex_city_key = normalize_city(match.group(2)) if match else ""
        return (self._by_insee(insee, postcode, city_key or cedex_city_key)
                or self._by_postcode(postcode, city_key, cedex_city_key)
                or self._by_district_postcode(postcode)
                or self._by_city_name(postcode, departement, city_key, cedex_city_key))

    def _by_insee(self, insee: str, postcode: str, city_key: str) -> GeoResult | None:
        """1. The INSEE code, when present and known. The whole-city codes of Paris / Lyon / Marseille
        are refined to the arrondissement the postcode or name gives."""
        commune = self.by_insee.get(insee) if insee else None
        if commune is None:
            return None
        if insee in _PLM_CITY_INSEE:
            district = self._district(postcode, city_key)
            if district is not None:
                return self._point(district)
        return self._point(commune)

    def _by_postcode(self, postcode: str, city_key: str, cedex_city_key: str) -> GeoResult | None:
        """2. A postcode La Poste knows: its one commune, the one named among its communes, else their
        centre at postcode precision."""
        candidates = self.by_postcode.get(postcode, []) if postcode else []
        if not candidates:
            return None
        if len(candidates) == 1:
            return self._point(candidates[0])
        for key in (city_key, cedex_city_key):
            if key:
                named = [c for c in candidates if self.key_of[c.insee] == key]
                if len(named) == 1:
                    return self._point(named[0])
        lat = sum(c.lat for c in candidates) / len(candidates)
        lon = sum(c.lon for c in candidates) / len(candidates)
        depts = {c.departement for c in candidates}
        return GeoResult(round(lat, 6), round(lon, 6), "postcode", "gazetteer", None, postcode, None,
                         depts.pop() if len(depts) == 1 else None)

    def _by_district_postcode(self, postcode: str) -> GeoResult | None:
        """3. Arrondissement postcodes the table files under another code (75016 is listed as 75116)."""
        district_insee = district_for_postcode(postcode) if postcode else None
        if district_insee and district_insee in self.by_insee:
            return self._point(self.by_insee[district_insee])
        return None

    def _by_city_name(self, postcode: str, departement: str, city_key: str,
                      cedex_city_key: str) -> GeoResult | GeoFailure:
        """4. A CEDEX or unknown postcode: the city name within the postcode's département(s)."""
        departements = departements_of_postcode(postcode) or ((departement,) if departement else ())
        for key in dict.fromkeys(k for k in (city_key, cedex_city_key) if k):
            if departements:
                found = [c for d in departements for c in self.by_dept_name.get((d, key), [])]
            else:
                found = self.by_name.get(key, [])
            if len(found) == 1:
                return self._point(found[0])
            if len(found) > 1:
                return GeoFailure("ambiguous_commune", departements[0] if len(departements) == 1 else None)
        return GeoFailure("unknown_commune", departements[0] if len(departements) == 1 else None)

    def _district(self, postcode: str, city_key: str) -> Commune | None:
        insee = district_for_postcode(postcode) if postcode else None
        if insee and insee in self.by_insee:
            return self.by_insee[insee]
        if city_key:
            found = self.by_name.get(city_key, [])
            if len(found) == 1 and found[0].insee not in _PLM_CITY_INSEE:
                return found[0]
        return None


class BanCache:
    """BAN answers by query text, kept in SQLite so that a reload does not ask BAN again."""

    def __init__(self, path: Path | None) -> None:
        self._memory: dict[str, tuple | None] = {}
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS ban (query TEXT PRIMARY KEY, answer TEXT)")

    def get(self, query: str) -> tuple | Literal[False] | None:
        """The cached answer tuple, ``None`` for a cached "not found", ``False`` when not cached."""
        if query in self._memory:
            return self._memory[query]
        if self._db is None:
            return False
        with self._lock:
            row = self._db.execute("SELECT answer FROM ban WHERE query = ?", (query,)).fetchone()
        if row is None:
            return False
        answer = None if row[0] == "" else tuple(_decode(row[0]))
        self._memory[query] = answer
        return answer

    def put(self, query: str, answer: tuple | None) -> None:
        self._memory[query] = answer
        if self._db is not None:
            with self._lock:
                self._db.execute("INSERT OR REPLACE INTO ban VALUES (?, ?)",
                                 (query, "" if answer is None else _encode(answer)))
                self._db.commit()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _encode(answer: tuple) -> str:
    import json

    return json.dumps(list(answer))


def _decode(text: str) -> list:
    import json

    return json.loads(text)


class BanGeocoder:
    """geopy's ``BANFrance`` pointed at ``url`` (the national API, or any server speaking it)."""

    def __init__(self, url: str, *, timeout_s: float = 5.0, min_score: float = 0.5,
                 cache: BanCache | None = None) -> None:
        from geopy.geocoders import BANFrance

        parsed = urlparse(url if "://" in url else f"https://{url}")
        domain = parsed.netloc + parsed.path.rstrip("/")
        self.geocoder = BANFrance(domain=domain, scheme=parsed.scheme or "https", timeout=timeout_s,
                                  user_agent="sas-platform")
        self.min_score = min_score
        self.cache = cache or BanCache(None)
        self.errors = 0

    def locate(self, query: str) -> tuple | None:
        """``(lat, lon, precision, citycode, postcode, city)`` or ``None``; raises on transport errors."""
        cached = self.cache.get(query)
        if cached is not False:
            return cached
        location = self.geocoder.geocode(query, exactly_one=True)
        answer = None
        if location is not None:
            props = (location.raw or {}).get("properties", {})
            precision = BAN_PRECISION.get(props.get("type", ""))
            score = float(props.get("score") or 0)
            if precision and score >= self.min_score:
                answer = (round(location.latitude, 6), round(location.longitude, 6), precision,
                          props.get("citycode"), props.get("postcode"), props.get("city"))
        self.cache.put(query, answer)
        return answer


class Geocoder:
    """BAN first when configured, the gazetteer otherwise and as fallback; counts what it did."""

    def __init__(self, gazetteer: Gazetteer, *, ban: BanGeocoder | None = None) -> None:
        self.gazetteer = gazetteer
        self.ban = ban
        self.stats: Counter[str] = Counter()

    def geocode(self, address: Address, *, departement: str = "") -> GeoResult | GeoFailure:
        """Place ``address`` (see module doc). ``departement`` is a hint for addresses without postcode."""
        base = self.gazetteer.locate(postcode=address.postcode, insee=address.insee, city=address.city,
                                     cedex_line=address.cedex_line, departement=departement)
        if self.ban is None or isinstance(base, GeoFailure) or not address.street:
            return base
        town = f"{base.postcode or address.postcode} {base.city or address.city}".strip()
        query = f"{address.street_line()} {town}".strip()
        try:
            answer = self.ban.locate(query)
        except Exception as exc:  # noqa: BLE001 - any transport / parsing failure falls back
            self.ban.errors += 1
            self.stats["ban_error"] += 1
            if self.ban.errors <= 3:
                log.warning("BAN geocoding failed (%s); falling back to the communes gazetteer", exc)
            return base
        if answer is None:
            self.stats["ban_no_match"] += 1
            return base
        lat, lon, precision, citycode, postcode, city = answer
        if base.departement and citycode and not str(citycode).startswith(base.departement[:2]):
            # BAN picked a homonym street elsewhere in France: trust the commune instead.
            self.stats["ban_other_departement"] += 1
            return base
        self.stats["ban"] += 1
        return GeoResult(lat, lon, precision, "ban", citycode or base.insee, postcode or base.postcode,
                         city or base.city, base.departement)


def build_geocoder(*, communes: list[Commune], ban_url: str | None = None, ban_timeout_s: float = 5.0,
                   ban_cache_path: Path | None = None, ban_min_score: float = 0.5) -> Geocoder:
    """The geocoder the settings ask for (BAN only when ``ban_url`` is set)."""
    ban = None
    if ban_url:
        ban = BanGeocoder(ban_url, timeout_s=ban_timeout_s, min_score=ban_min_score,
                          cache=BanCache(ban_cache_path))
    return Geocoder(Gazetteer(communes), ban=ban)
