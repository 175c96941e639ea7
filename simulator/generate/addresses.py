"""The BAN-format address file of the directory generator: ``adresses-<dép>.csv``.

The generator invents street addresses for its practice places; this book places each of them
plausibly inside its commune and writes them in the exact column format of the adresse.data.gouv.fr
export (``connectors.addresses``), one file per département, so that the demo, the tests and the
benchmarks reach address-level distances through the real loading path (``sas addresses load``).

Placement, deterministic per address (a CRC of the address seeds it, so the order in which addresses
are met changes nothing):

* each street of a commune gets an anchor drawn uniformly in a disc around the commune centroid, of a
  radius scaled from the commune's population (``commune_radius_km``: a village 0.5 km, Agen 1.6 km,
  Bordeaux 3.9 km; Paris / Lyon / Marseille arrondissements from their own population, 0.6 – 1.8 km),
  and a bearing; its numbers are spread along it (odd and even on either side);
* a point is kept only if the nearest commune centroid of the whole table is its own commune's (so it
  lies in the commune's neighbourhood, hence in its département), and, when it lies towards a side where
  no other commune centroid is found within 8 km (its 30° sector and an adjacent one empty: the sea, or a
  national border), only if it is within 400 m of the centroid — centroids are on land, coastal towns
  spread inland; otherwise another draw, and after a few failed draws the centroid.

Each street also gets a few more numbers than the directory uses (2 to 13), as real streets have.
Some addresses are left out on purpose, as in the real base (new buildings, lieux-dits): about 5 % of
the numbers (their street is still there, with a neighbouring number) and 3 % of the streets, so that a
load shows the three precisions ``address``, ``street`` and ``municipality``.
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path

from connectors.addresses import BAN_HEADER, normalize_street
from connectors.reference import Commune

PLM_PARENTS = {"75056", "69123", "13055"}
_PLM_DISTRICT = re.compile(r"^(751\d\d|6938\d|132\d\d)$")
#: Words the generator's upper-case street names write without their accent.
_ACCENTS = {
    "REPUBLIQUE": "République", "GENERAL": "Général", "MARECHAL": "Maréchal", "LIBERATION": "Libération",
    "EGLISE": "Église", "ECOLES": "Écoles", "CHATEAU": "Château", "PRES": "Prés", "LIBERTE": "Liberté",
    "JAURES": "Jaurès", "EMILE": "Émile", "ALLEE": "Allée",
}
_LOWER = {"DE", "DU", "DES", "LA", "LE", "LES", "ET", "AU", "AUX", "EN"}
_REP_WORDS = {"B": "bis", "T": "ter", "Q": "quater", "C": "quinquies"}
_KM_PER_DEG = 111.32
NUMBER_OMITTED_SHARE = 0.05
STREET_OMITTED_SHARE = 0.03
#: Neighbouring centroids are looked for this far; towards a side with none (the sea, a border), points
#: stay within ``SHORE_KM`` of the centroid.
NEIGHBOUR_KM = 8.0
SHORE_KM = 0.4
#: Up to this many more numbers per street (besides the ones the directory uses).
EXTRA_NUMBERS = 12


def commune_radius_km(commune: Commune) -> float:
    """How far from its centroid a commune's addresses spread (see module doc)."""
    population = commune.population or 0
    if _PLM_DISTRICT.match(commune.insee):
        return min(1.8, max(0.6, 0.25 + 0.0032 * math.sqrt(population))) if population else 1.0
    return min(4.0, 0.35 + 0.22 * math.sqrt(population / 1000.0))


def street_label(type_label: str, street: str) -> str:
    """``("Rue", "DE L EGLISE")`` → ``"Rue de l'Église"`` (BAN writes names in accented mixed case)."""
    words: list[str] = []
    tokens = street.split()
    for index, token in enumerate(tokens):
        if token == "L" and index + 1 < len(tokens):
            words.append("l'")
            continue
        if token == "D" and index + 1 < len(tokens):
            words.append("d'")
            continue
        if token in _LOWER:
            words.append(token.lower())
        else:
            words.append(_ACCENTS.get(token, token.capitalize()))
    text = " ".join(words).replace("l' ", "l'").replace("d' ", "d'")
    return f"{type_label} {text}".strip()


def _upper_ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper().replace("'", " ")


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


@dataclass
class _Street:
    commune: Commune
    label: str            # "Rue de l'Église"
    fantoir: str          # 4 characters, unique within the commune
    lat: float
    lon: float
    bearing: float
    half_length_km: float
    omitted: bool
    numbers: dict[str, tuple[float, float]]   # "12" / "12bis" → (lat, lon)
    reps: dict[str, tuple[str, str]]           # key → (numero, rep word)


class _NearestCentroid:
    """Which commune centroid is nearest to a point (grid of 0.1°, the nine cells around the point)."""

    def __init__(self, communes: list[Commune]) -> None:
        self.cells: dict[tuple[int, int], list[Commune]] = {}
        for c in communes:
            if c.insee in PLM_PARENTS:
                continue  # the whole city's centroid would take its arrondissements' points
            self.cells.setdefault((math.floor(c.lat * 10), math.floor(c.lon * 10)), []).append(c)
        self._gaps: dict[str, float] = {}
        self._sectors: dict[str, tuple[bool, ...]] = {}

    def half_gap(self, commune: Commune) -> float:
        """Half the distance (in the same squared-degree units as ``nearest``, square-rooted) from a
        commune's centroid to its nearest neighbour's: a point closer than that to the centroid is nearer
        it than any other centroid (triangle inequality), with no scan."""
        gap = self._gaps.get(commune.insee)
        if gap is None:
            i, j = math.floor(commune.lat * 10), math.floor(commune.lon * 10)
            scale = math.cos(math.radians(commune.lat))
            best = float("inf")
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    for c in self.cells.get((i + di, j + dj), ()):
                        if c.insee != commune.insee:
                            best = min(best, (c.lat - commune.lat) ** 2 + ((c.lon - commune.lon) * scale) ** 2)
            gap = self._gaps[commune.insee] = math.sqrt(best) / 2 if best != float("inf") else 0.05
        return gap

    def open_sectors(self, commune: Commune) -> tuple[bool, ...]:
        """For each of 12 directions (30° sectors, from north clockwise): whether no other commune
        centroid lies that way within ``NEIGHBOUR_KM`` — the sea, or a national border, is there."""
        sectors = self._sectors.get(commune.insee)
        if sectors is None:
            filled = [False] * 12
            i, j = math.floor(commune.lat * 10), math.floor(commune.lon * 10)
            scale = math.cos(math.radians(commune.lat))
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    for c in self.cells.get((i + di, j + dj), ()):
                        north = (c.lat - commune.lat) * _KM_PER_DEG
                        east = (c.lon - commune.lon) * _KM_PER_DEG * scale
                        if c.insee == commune.insee or math.hypot(north, east) > NEIGHBOUR_KM:
                            continue
                        filled[int((math.degrees(math.atan2(east, north)) % 360) // 30) % 12] = True
            sectors = self._sectors[commune.insee] = tuple(not f for f in filled)
        return sectors

    def nearest(self, lat: float, lon: float) -> Commune | None:
        i, j = math.floor(lat * 10), math.floor(lon * 10)
        best, best_d = None, float("inf")
        scale = math.cos(math.radians(lat))
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                for c in self.cells.get((i + di, j + dj), ()):
                    d = (c.lat - lat) ** 2 + ((c.lon - lon) * scale) ** 2
                    if d < best_d:
                        best, best_d = c, d
        return best


class AddressBook:
    """The invented addresses of one generation and their positions (see module doc)."""

    def __init__(self, communes: list[Commune]) -> None:
        self._nearest = _NearestCentroid(communes)
        self._streets: dict[tuple[str, str], _Street] = {}
        self._by_raw: dict[tuple[str, str, str], _Street] = {}
        self._fantoirs: dict[str, set[str]] = {}

    # -- placement ---------------------------------------------------------------------------------
    def _inside(self, commune: Commune, lat: float, lon: float) -> bool:
        scale = math.cos(math.radians(lat))
        north, east = (lat - commune.lat) * _KM_PER_DEG, (lon - commune.lon) * _KM_PER_DEG * scale
        if math.hypot(north, east) > SHORE_KM:
            # Towards a side with no neighbouring commune (sea, border) — its sector empty and one of the
            # adjacent ones too, a 60° gap — only the first few hundred metres from the centroid are taken.
            sector = int((math.degrees(math.atan2(east, north)) % 360) // 30) % 12
            sectors = self._nearest.open_sectors(commune)
            if sectors[sector] and (sectors[(sector - 1) % 12] or sectors[(sector + 1) % 12]):
                return False
        if math.hypot(lat - commune.lat, (lon - commune.lon) * scale) <= self._nearest.half_gap(commune):
            return True
        nearest = self._nearest.nearest(lat, lon)
        return nearest is not None and nearest.insee == commune.insee

    @staticmethod
    def _offset(lat: float, lon: float, north_km: float, east_km: float) -> tuple[float, float]:
        return (lat + north_km / _KM_PER_DEG,
                lon + east_km / (_KM_PER_DEG * max(0.2, math.cos(math.radians(lat)))))

    def _street(self, commune: Commune, type_label: str, street: str) -> _Street:
        raw = (commune.insee, type_label, street)
        found = self._by_raw.get(raw)
        if found is None:
            found = self._by_raw[raw] = self._new_street(commune, type_label, street)
        return found

    def _new_street(self, commune: Commune, type_label: str, street: str) -> _Street:
        label = street_label(type_label, street)
        norm = normalize_street(label)
        key = (commune.insee, norm)
        found = self._streets.get(key)
        if found is not None:
            return found
        rng = random.Random(_crc(f"{commune.insee}|{norm}"))
        radius = commune_radius_km(commune)
        lat, lon = commune.lat, commune.lon
        for _ in range(12):
            distance = 0.6 * radius * math.sqrt(rng.random())
            angle = rng.random() * 2 * math.pi
            candidate = self._offset(commune.lat, commune.lon, distance * math.cos(angle), distance * math.sin(angle))
            if self._inside(commune, *candidate):
                lat, lon = candidate
                break
        used = self._fantoirs.setdefault(commune.insee, set())
        seed = _crc(norm)
        while True:
            fantoir = f"{seed % 10000:04d}"
            if fantoir not in used:
                used.add(fantoir)
                break
            seed += 7
        found = self._streets[key] = _Street(
            commune=commune, label=label, fantoir=fantoir, lat=round(lat, 6), lon=round(lon, 6),
            bearing=rng.random() * math.pi, half_length_km=min(0.6, 0.4 * radius),
            omitted=rng.random() < STREET_OMITTED_SHARE, numbers={}, reps={})
        return found

    def _number_point(self, street: _Street, number: int, odd_side: bool) -> tuple[float, float]:
        along = ((number % 200) / 200.0 - 0.5) * 2 * street.half_length_km
        side = 0.012 if odd_side else -0.012
        north = along * math.cos(street.bearing) - side * math.sin(street.bearing)
        east = along * math.sin(street.bearing) + side * math.cos(street.bearing)
        point = self._offset(street.lat, street.lon, north, east)
        if not self._inside(street.commune, *point):
            point = (street.lat, street.lon)
        return round(point[0], 6), round(point[1], 6)

    def register(self, commune: Commune, number: str, rep: str, type_label: str, street: str) -> tuple[float, float]:
        """Record an address the generator wrote; returns its position (lat, lon)."""
        s = self._street(commune, type_label, street)
        numero = str(int(number)) if number.strip().isdigit() else "1"
        word = _REP_WORDS.get(rep.strip().upper(), rep.strip().lower()) if rep.strip() else ""
        key = f"{numero}{word}"
        point = s.numbers.get(key)
        if point is None:
            point = self._number_point(s, int(numero), int(numero) % 2 == 1)
            s.numbers[key] = point
            s.reps[key] = (numero, word)
        return point

    # -- writing -----------------------------------------------------------------------------------
    def lines_by_departement(self) -> dict[str, list[dict[str, str]]]:
        """The export lines, sorted as the real export is (commune, street, number)."""
        out: dict[str, list[dict[str, str]]] = {}
        for (insee, _norm), s in sorted(self._streets.items()):
            if s.omitted:
                continue
            c = s.commune
            entries: dict[str, tuple[str, str, tuple[float, float]]] = {}
            for key, point in s.numbers.items():
                numero, word = s.reps[key]
                if _crc(f"{insee}|{s.fantoir}|{key}") % 1000 < NUMBER_OMITTED_SHARE * 1000:
                    # Left out of the base: a neighbouring number keeps the street in it.
                    neighbour = int(numero) + 2 if int(numero) < 9000 else int(numero) - 2
                    nkey = str(neighbour)
                    if nkey not in s.numbers:
                        entries[nkey] = (nkey, "", self._number_point(s, neighbour, neighbour % 2 == 1))
                    continue
                entries[key] = (numero, word, point)
            # Other numbers of the street, as the real base has them (about a dozen a street): the
            # operator's box can suggest them, and a load handles numbers as many as streets need.
            extra_rng = random.Random(_crc(f"{insee}|{s.fantoir}|extra"))
            for _ in range(2 + extra_rng.randrange(EXTRA_NUMBERS)):
                number = extra_rng.randint(1, 180)
                if str(number) not in entries and str(number) not in s.numbers:
                    entries[str(number)] = (str(number), "", self._number_point(s, number, number % 2 == 1))
            departement = c.departement
            for _key, (numero, word, (lat, lon)) in sorted(entries.items(),
                                                          key=lambda e: (int(e[1][0]), e[1][1])):
                ident = f"{insee}_{s.fantoir}_{int(numero):05d}" + (f"_{word}" if word else "")
                out.setdefault(departement, []).append({
                    "id": ident, "id_fantoir": f"{insee}_{s.fantoir}", "numero": numero, "rep": word,
                    "nom_voie": s.label, "code_postal": c.postcodes[0] if c.postcodes else "",
                    "code_insee": insee, "nom_commune": c.name, "lon": f"{lon:.6f}", "lat": f"{lat:.6f}",
                    "type_position": "entrée", "libelle_acheminement": _upper_ascii(c.name),
                    "nom_afnor": _upper_ascii(s.label), "source_position": "commune",
                    "source_nom_voie": "commune", "certification_commune": "1" if int(numero) % 3 else "0",
                })
        return out

    def write(self, out_dir: Path, *, projections: dict[str, int]) -> list[Path]:
        """Write ``adresses-<dép>.csv`` files (Lambert-93 ``x``/``y`` in metropolitan France, the
        département's own projection overseas); returns their paths."""
        from pyproj import Transformer

        paths: list[Path] = []
        transformers: dict[int, Transformer] = {}
        for departement, rows in sorted(self.lines_by_departement().items()):
            epsg = projections.get(departement, 2154)
            transformer = transformers.get(epsg)
            if transformer is None:
                transformer = transformers[epsg] = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
            xs, ys = transformer.transform([float(r["lon"]) for r in rows], [float(r["lat"]) for r in rows])
            path = out_dir / f"adresses-{departement}.csv"
            with path.open("w", encoding="utf-8", newline="\n") as handle:
                handle.write(";".join(BAN_HEADER) + "\n")
                for row, x, y in zip(rows, xs, ys, strict=True):
                    row["x"], row["y"] = f"{x:.2f}", f"{y:.2f}"
                    handle.write(";".join(row.get(name, "") for name in BAN_HEADER) + "\n")
            paths.append(path)
        return paths
