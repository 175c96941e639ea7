"""Realistic synthetic directory files in the **real national formats** (``sas directory generate``).

Writes, for all of France or chosen départements:

* ``PS_LibreAcces_Personne_activite_<YYYYMMDDhhmm>.txt`` — the RPPS extraction (``|``, trailing ``|``,
  header, UTF-8; optionally inside ``PS_LibreAcces_<date>.zip``), sorted by identifier;
* ``etalab-cs1100507-stock-<YYYYMMDD>-0336.csv`` — the FINESS stock file (``;``, Latin-1, metadata line,
  ``structureet`` then ``geolocalisation`` lines in Lambert-93 / UTM metres);
* ``sas-participation-<YYYYMMDD>.csv`` — the SAS participation companion file
  (see ``participation.py``; in production it comes from the platform's own registrations);
* ``adresses-<dép>.csv`` — the invented street addresses in the national address base's export format
  (``addresses.py`` beside this module: each placed inside its commune), which FINESS positions agree with.

Built on the real communes table (places spread by commune population), with realistic French names, a
specialty mix where general practice is the majority, several places for some practitioners, valid RPPS
Luhn keys, a few lines without address, CEDEX postcodes, Paris / Lyon / Marseille arrondissements,
CPTS grouping participating practitioners by territory, SOS Médecins fixed consultation places in large
cities, centres de santé and maisons de santé.

SOS Médecins places are not in FINESS: they are written as RPPS lines of the SOS doctors whose
structure is the place, recognisable by ``Raison sociale site`` = ``SOS MEDECINS <CITY>`` (and the
association's SIRET), plus a ``sos`` line in the participation file.

Deterministic: the same ``seed``, arguments and ``extracted_at`` give byte-identical files. It is the mirror
image of the parsers of ``connectors/directory`` (it takes their columns and id rules from there), but only
demos, tests and benchmarks need invented data: it lives with the simulator, outside the runtime.
"""

from __future__ import annotations

import bisect
import csv
import math
import random
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from itertools import accumulate
from pathlib import Path

from pyproj import Transformer

from connectors.directory.finess import STRUCTURE_COLUMNS
from connectors.directory.ids import luhn_key
from connectors.directory.nomenclatures import (
    ACTIVITY_SECTORS,
    EXERCISE_MODES,
    FINESS_CATEGORY_LABELS,
    PROFESSIONS,
    load_specialties,
)
from connectors.directory.participation import HEADER as PARTICIPATION_HEADER
from connectors.directory.rpps import HEADER as RPPS_HEADER
from connectors.reference import Commune, load_communes
from sas_core.clock import utcnow
from simulator.demo_vendors import DEMO_VENDOR_IDS
from simulator.generate.addresses import AddressBook

DEFAULT_SEED = 20240522

SURNAMES = (
    "MARTIN BERNARD THOMAS PETIT ROBERT RICHARD DURAND DUBOIS MOREAU LAURENT SIMON MICHEL LEFEBVRE LEROY "
    "ROUX DAVID BERTRAND MOREL FOURNIER GIRARD BONNET DUPONT LAMBERT FONTAINE ROUSSEAU VINCENT MULLER "
    "LEFEVRE FAURE ANDRE MERCIER BLANC GUERIN BOYER GARNIER CHEVALIER FRANCOIS LEGRAND GAUTHIER GARCIA "
    "PERRIN ROBIN CLEMENT MORIN NICOLAS HENRY ROUSSEL MATHIEU GAUTIER MASSON MARCHAND DUVAL DENIS DUMONT "
    "MARIE LEMAIRE NOEL MEYER DUFOUR MEUNIER BRUN BLANCHARD GIRAUD JOLY RIVIERE LUCAS BRUNET GAILLARD "
    "BARBIER ARNAUD MARTINEZ GERARD ROCHE RENARD SCHMITT ROY LEROUX COLIN VIDAL CARON PICARD ROGER FABRE "
    "AUBERT LEMOINE RENAUD DUMAS LACROIX OLIVIER PHILIPPE BOURGEOIS PIERRE BENOIT REY LECLERC PAYET "
    "ROLLAND LECLERCQ GUILLAUME LECOMTE LOPEZ JEAN DUPUY GUILLOT HUBERT BERGER CARPENTIER SANCHEZ DUPUIS "
    "MOULIN LOUIS DESCHAMPS HUET VASSEUR PEREZ BOUCHER FLEURY ROYER KLEIN JACQUET ADAM PARIS POIRIER "
    "MARTY AUBRY GUYOT CARRE CHARLES RENAULT CHARPENTIER MENARD MAILLARD BARON BERTIN BAILLY HERVE "
    "SCHNEIDER FERNANDEZ LE-GALL COLLET LEGER BOUVIER JULIEN PREVOST MILLET PERROT DANIEL LE-ROUX COUSIN "
    "GERMAIN BRETON BESSON LANGLOIS REMY LE-GOFF PELLETIER LEVEQUE PERRIER LEBLANC BARRE LEBRUN MARCHAL "
    "WEBER MALLET HAMON BOULANGER JACOB MONNIER MICHAUD RODRIGUEZ GUICHARD GILLET ETIENNE GRONDIN POULAIN "
    "TESSIER CHEVALLIER COLLIN CHAUVIN DA-SILVA BOUCHET GAY LEMAITRE BENARD MARECHAL HUMBERT REYNAUD "
    "ANTOINE HOARAU PERRET BARTHELEMY CORDIER PICHON LEJEUNE GILBERT LAMY DELAUNAY PASQUIER CARLIER "
    "LAPORTE BEN-AMAR HADDAD NGUYEN TRAN BENALI MEZIANE DIALLO TRAORE KOWALSKI"
).split()
FIRST_NAMES_F = (
    "MARIE NATHALIE ISABELLE SYLVIE CATHERINE FRANCOISE VALERIE CHRISTINE SANDRINE STEPHANIE VERONIQUE "
    "SOPHIE CELINE CHANTAL PATRICIA ANNE BRIGITTE JULIE AURELIE EMILIE CAROLINE CAMILLE LAURA PAULINE "
    "CLAIRE MARION CHLOE LEA MANON SARAH LUCIE CAMILIA INES CLEMENCE HELENE AGNES ELODIE AUDREY "
    "VIRGINIE DELPHINE CORINNE MARTINE JEANNE ALICE MATHILDE CHARLOTTE JUSTINE AMELIE ELISE NOEMIE"
).split()
FIRST_NAMES_M = (
    "JEAN PHILIPPE MICHEL ALAIN PATRICK NICOLAS CHRISTOPHE PIERRE CHRISTIAN ERIC FREDERIC LAURENT "
    "STEPHANE DAVID PASCAL DANIEL SEBASTIEN JULIEN THIERRY OLIVIER BERNARD THOMAS ALEXANDRE GILLES "
    "FRANCOIS DIDIER MARC GUILLAUME VINCENT ANTOINE JEROME ROMAIN MAXIME CLEMENT HUGO LUCAS PAUL "
    "ARNAUD BENOIT XAVIER YANN MATHIEU FABRICE BRUNO HERVE LOUIS ADRIEN KARIM MEHDI"
).split()
STREET_TYPES = (("RUE", "Rue", 52), ("AV", "Avenue", 16), ("BD", "Boulevard", 9), ("PL", "Place", 6),
                ("CHE", "Chemin", 5), ("RTE", "Route", 5), ("ALL", "Allée", 3), ("IMP", "Impasse", 2),
                ("QUAI", "Quai", 1), ("CRS", "Cours", 1))
STREET_NAMES = (
    "DE LA REPUBLIQUE", "VICTOR HUGO", "JEAN JAURES", "DU GENERAL DE GAULLE", "PASTEUR", "DE LA GARE",
    "DE LA PAIX", "DES ECOLES", "DE L EGLISE", "JULES FERRY", "GAMBETTA", "DU MARECHAL FOCH",
    "DE LA LIBERATION", "DU 8 MAI 1945", "DU 11 NOVEMBRE", "DE VERDUN", "NATIONALE", "DE LA MAIRIE",
    "ANATOLE FRANCE", "JEAN MOULIN", "EMILE ZOLA", "CARNOT", "DU MOULIN", "DES TILLEULS", "DU STADE",
    "SAINT MARTIN", "DES LILAS", "CLEMENCEAU", "MARCEL PAGNOL", "DU CHATEAU", "DE LA FONTAINE",
    "ARISTIDE BRIAND", "ALBERT CAMUS", "LOUIS PASTEUR", "DES ROSES", "DE LA LIBERTE", "PIERRE CURIE",
    "DE LORRAINE", "DE BRETAGNE", "DU COMMERCE", "DES PRES", "DU PORT", "DE LA POSTE", "FRANKLIN ROOSEVELT",
)
#: (profession code, weight, RPPS or ADELI)
PROFESSION_MIX = (("10", 56, "8"), ("60", 13, "8"), ("70", 10, "8"), ("40", 7, "8"), ("21", 5, "8"),
                  ("50", 3, "8"), ("80", 2, "8"), ("91", 2, "0"), ("92", 1, "0"), ("93", 1, "0"))
#: Doctors' ordinal specialty mix (general practice the majority).
DOCTOR_SPECIALTIES = (
    ("SM54", 560), ("SM26", 40), ("SM53", 20), ("SM42", 40), ("SM40", 30), ("SM04", 30), ("SM38", 30),
    ("SM44", 30), ("SM02", 30), ("SM15", 22), ("SM20", 18), ("SM19", 10), ("SM59", 20), ("SM24", 15),
    ("SM34", 15), ("SM08", 15), ("SM32", 10), ("SM48", 10), ("SM41", 10), ("SM16", 8), ("SM18", 10),
    ("SM27", 7), ("SM29", 7), ("SM30", 5), ("SM57", 3), ("SM58", 3), ("SM61", 5), ("SM21", 3),
    ("SM14", 6), ("SM12", 5), ("SM73", 4), ("SM74", 4),
)
GP_CODES = {"SM54", "SM26", "SM53"}
DEPARTEMENT_NAMES = {
    "01": "Ain", "02": "Aisne", "03": "Allier", "04": "Alpes-de-Haute-Provence", "05": "Hautes-Alpes",
    "06": "Alpes-Maritimes", "07": "Ardèche", "08": "Ardennes", "09": "Ariège", "10": "Aube", "11": "Aude",
    "12": "Aveyron", "13": "Bouches-du-Rhône", "14": "Calvados", "15": "Cantal", "16": "Charente",
    "17": "Charente-Maritime", "18": "Cher", "19": "Corrèze", "2A": "Corse-du-Sud", "2B": "Haute-Corse",
    "21": "Côte-d'Or", "22": "Côtes-d'Armor", "23": "Creuse", "24": "Dordogne", "25": "Doubs", "26": "Drôme",
    "27": "Eure", "28": "Eure-et-Loir", "29": "Finistère", "30": "Gard", "31": "Haute-Garonne", "32": "Gers",
    "33": "Gironde", "34": "Hérault", "35": "Ille-et-Vilaine", "36": "Indre", "37": "Indre-et-Loire",
    "38": "Isère", "39": "Jura", "40": "Landes", "41": "Loir-et-Cher", "42": "Loire", "43": "Haute-Loire",
    "44": "Loire-Atlantique", "45": "Loiret", "46": "Lot", "47": "Lot-et-Garonne", "48": "Lozère",
    "49": "Maine-et-Loire", "50": "Manche", "51": "Marne", "52": "Haute-Marne", "53": "Mayenne",
    "54": "Meurthe-et-Moselle", "55": "Meuse", "56": "Morbihan", "57": "Moselle", "58": "Nièvre",
    "59": "Nord", "60": "Oise", "61": "Orne", "62": "Pas-de-Calais", "63": "Puy-de-Dôme",
    "64": "Pyrénées-Atlantiques", "65": "Hautes-Pyrénées", "66": "Pyrénées-Orientales", "67": "Bas-Rhin",
    "68": "Haut-Rhin", "69": "Rhône", "70": "Haute-Saône", "71": "Saône-et-Loire", "72": "Sarthe",
    "73": "Savoie", "74": "Haute-Savoie", "75": "Paris", "76": "Seine-Maritime", "77": "Seine-et-Marne",
    "78": "Yvelines", "79": "Deux-Sèvres", "80": "Somme", "81": "Tarn", "82": "Tarn-et-Garonne", "83": "Var",
    "84": "Vaucluse", "85": "Vendée", "86": "Vienne", "87": "Haute-Vienne", "88": "Vosges", "89": "Yonne",
    "90": "Territoire de Belfort", "91": "Essonne", "92": "Hauts-de-Seine", "93": "Seine-Saint-Denis",
    "94": "Val-de-Marne", "95": "Val-d'Oise", "971": "Guadeloupe", "972": "Martinique", "973": "Guyane",
    "974": "La Réunion", "976": "Mayotte",
}
#: FINESS département codes of the overseas départements, and the projection of their coordinates.
FINESS_DEPT = {"971": "9A", "972": "9B", "973": "9C", "974": "9D", "976": "9F"}
PROJECTION = {"971": (5490, "UTM_N20"), "972": (5490, "UTM_N20"), "973": (2972, "UTM_N22"),
              "974": (2975, "UTM_S40"), "976": (4471, "UTM_S38")}
PLM_PARENTS = {"75056": "751", "69123": "6938", "13055": "132"}
PHONE_PREFIX = {"971": "0590", "972": "0596", "973": "0594", "974": "0262", "976": "0269"}
SOS_HOURS = "lun-ven 20:00-24:00, sam 12:00-24:00, dim 08:00-24:00"
OTHER_FINESS = (("355", "Centre Hospitalier (C.H.)", "CENTRE HOSPITALIER"), ("620", "Pharmacie d'Officine",
                "PHARMACIE"), ("500", "EHPAD", "EHPAD"), ("611", "Laboratoire de biologie médicale", "LABORATOIRE"))


@lru_cache(maxsize=1 << 16)
def _upper_ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper().replace("'", " ")


def _phone_prefix(departement: str) -> str:
    if departement in PHONE_PREFIX:
        return PHONE_PREFIX[departement]
    d = departement
    if d in {"75", "77", "78", "91", "92", "93", "94", "95"}:
        return "01"
    if d in {"14", "22", "27", "28", "29", "35", "36", "37", "41", "44", "45", "49", "50", "53", "56", "61",
             "72", "76", "85", "18", "02", "59", "60", "62", "80"}:
        return "02" if d not in {"02", "59", "60", "62", "80"} else "03"
    if d in {"04", "05", "06", "13", "2A", "2B", "30", "34", "48", "66", "83", "84", "01", "07", "26", "38",
             "42", "43", "69", "73", "74", "11"}:
        return "04"
    if d in {"09", "12", "16", "17", "19", "23", "24", "31", "32", "33", "40", "46", "47", "64", "65", "79",
             "81", "82", "86", "87"}:
        return "05"
    return "03"


@dataclass
class GeneratedDirectory:
    """What ``generate_directory`` wrote."""

    rpps: Path
    finess: Path
    participation: Path
    places: int                       # RPPS practice places (professional × place)
    practitioners: int
    rpps_lines: int
    structures: Counter = field(default_factory=Counter)   # FINESS establishments by kind, SOS places
    participants: int = 0
    seconds: float = 0.0
    #: BAN-format address files, one per département (``adresses-<dép>.csv``).
    addresses: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"rpps": str(self.rpps), "finess": str(self.finess), "participation": str(self.participation),
                "addresses": [str(p) for p in self.addresses],
                "places": self.places, "practitioners": self.practitioners, "rpps_lines": self.rpps_lines,
                "structures": dict(self.structures), "participants": self.participants,
                "seconds": round(self.seconds, 2)}


@dataclass
class _Structure:
    kind: str            # cpts | msp | centre | sos | other
    ident: str           # FINESS (or RPPS technical id for SOS)
    name: str
    commune: Commune
    number: str
    street_type: tuple
    street: str
    phone: str
    siret: str
    category: str = ""
    category_label: str = ""


def _plm_districts(communes: list[Commune]) -> dict[str, list[Commune]]:
    """The arrondissements of Paris, Lyon and Marseille, by city."""
    districts: dict[str, list[Commune]] = {}
    for c in communes:
        for parent, prefix in PLM_PARENTS.items():
            if c.insee.startswith(prefix) and c.insee != parent:
                districts.setdefault(parent, []).append(c)
    return districts


def _weighted_pool(communes: list[Commune], departements: set[str] | None, by_insee: dict[str, Commune],
                   districts: dict[str, list[Commune]]) -> tuple[list[Commune], list[float]]:
    """The communes places are drawn from (in ``departements``, with a postcode) and their weights (the
    population; a Paris / Lyon / Marseille arrondissement without one gets its share of the city's)."""
    pool: list[Commune] = []
    weights: list[float] = []
    for c in communes:
        if departements and c.departement not in departements:
            continue
        if c.insee in PLM_PARENTS:
            continue  # the city is spread over its arrondissements
        population: float | None = c.population
        if population is None:
            parent = next((p for p, pre in PLM_PARENTS.items() if c.insee.startswith(pre)), None)
            city_population = by_insee[parent].population if parent and parent in by_insee else None
            if parent and city_population:
                population = city_population / len(districts[parent])
        if not c.postcodes:
            continue
        pool.append(c)
        weights.append(float(population or 20))
    return pool, weights


class _Gen:
    def __init__(self, *, communes: list[Commune], departements: set[str] | None, seed: int,
                 specialties: dict[str, str]) -> None:
        self.rng = random.Random(seed)
        self.labels = specialties
        by_insee = {c.insee: c for c in communes}
        districts = _plm_districts(communes)
        pool, weights = _weighted_pool(communes, departements, by_insee, districts)
        if not pool:
            raise ValueError(f"no commune in départements {sorted(departements or [])}")
        self.pool = pool
        self.cum = list(accumulate(weights))
        self.by_dept: dict[str, tuple[list[Commune], list[float]]] = {}
        for c, w in zip(pool, weights, strict=True):
            entry = self.by_dept.setdefault(c.departement, ([], []))
            entry[0].append(c)
            entry[1].append(w)
        self.dept_cum = {d: (cs, list(accumulate(ws))) for d, (cs, ws) in self.by_dept.items()}
        self.dept_pop = {d: sum(ws) for d, (cs, ws) in self.by_dept.items()}
        self.known_postcodes = {p for c in communes for p in c.postcodes}
        self.big_cities = self._big_cities(communes, departements, by_insee, districts)
        self.street_cum = list(accumulate(w for *_, w in STREET_TYPES))
        self.prof_cum = list(accumulate(w for _, w, _ in PROFESSION_MIX))
        self.spec_cum = list(accumulate(w for _, w in DOCTOR_SPECIALTIES))
        self.technical_seq = 0
        self.siret_seq = 0
        self.book: AddressBook | None = None

    @staticmethod
    def _big_cities(communes, departements, by_insee, districts) -> list[tuple[Commune, int]]:
        """(city, number of SOS places) for cities above 100,000 inhabitants (districts for P/L/M)."""
        cities = []
        for c in communes:
            if departements and c.departement not in departements:
                continue
            if (c.population or 0) < 100_000:
                continue
            if c.insee in districts:
                ordered = sorted(districts[c.insee], key=lambda d: d.insee)
                count = 3 if c.insee == "75056" else 2
                step = max(1, len(ordered) // count)
                for d in ordered[::step][:count]:
                    cities.append((d, 1))
            else:
                cities.append((c, 1))
        return sorted(cities, key=lambda x: x[0].insee)

    # --- small random helpers ---------------------------------------------------------------------
    def commune(self) -> Commune:
        return self.pool[bisect.bisect_left(self.cum, self.rng.random() * self.cum[-1])]

    def commune_in(self, departement: str) -> Commune:
        cs, cum = self.dept_cum[departement]
        return cs[bisect.bisect_left(cum, self.rng.random() * cum[-1])]

    def street(self) -> tuple[str, tuple, str]:
        rng = self.rng
        kind = STREET_TYPES[bisect.bisect_left(self.street_cum, rng.random() * self.street_cum[-1])]
        return str(rng.randint(1, 180)), kind, rng.choice(STREET_NAMES)

    def phone(self, departement: str, mobile: bool = False) -> str:
        rng = self.rng
        prefix = rng.choice(("06", "07")) if mobile else _phone_prefix(departement)
        width = 10 - len(prefix)
        return f"{prefix}{int(rng.random() * 10 ** width):0{width}d}"

    def siret(self) -> str:
        self.siret_seq += 1
        siren = f"{self.rng.randint(30, 99)}{self.siret_seq:06d}"
        siren += luhn_key(siren)
        nic = "0001" + "0"
        base = siren + nic[:4]
        return base + luhn_key(base)

    def technical_id(self, letter: str = "R") -> str:
        self.technical_seq += 1
        return f"{letter}1{self.technical_seq:013d}"

    def finess(self, commune: Commune, seq: int) -> str:
        d = commune.departement
        head = "97" if d.startswith("97") else d[:2]
        body = f"{head}{(seq * 7919) % 1_000_000:06d}"
        return body + luhn_key(body.replace("A", "0").replace("B", "0"))


def _city_label(rng: random.Random, commune: Commune) -> str:
    name = _upper_ascii(commune.name)
    for plm in ("PARIS ", "LYON ", "MARSEILLE "):
        if name.startswith(plm) and "ARRONDISSEMENT" in name:
            return plm.strip()  # RPPS lines write "PARIS" with the arrondissement's postcode
    if name.startswith("SAINT-") and rng.random() < 0.3:
        name = "ST " + name[6:]
    return name


def _cedex_postcode(rng: random.Random, commune: Commune, known: set[str]) -> str | None:
    head = commune.postcodes[0][:2]
    for _ in range(20):
        candidate = f"{head}{rng.randint(900, 999):03d}"
        if candidate not in known:
            return candidate
    return None


#: Above the national size (≈ 2.3 M offers) with room; identifiers stay unique up to there (ADELI numbers
#: are drawn per département and profession, FINESS numbers from a 10⁶ cycle).
MAX_PLACES = 2_500_000


def generate_directory(
    *,
    out_dir: Path | str,
    places: int,
    departements: list[str] | None = None,
    seed: int = DEFAULT_SEED,
    reference_dir: Path | str | None = None,
    extracted_at: datetime | None = None,
    zip_rpps: bool = False,
    gp_participation: float = 0.45,
    other_participation: float = 0.10,
    vendor_share: float = 0.75,
) -> GeneratedDirectory:
    """Write RPPS, FINESS and participation files for ``places`` practice places (100 – 2,500,000: the whole
    of France is about 2.3 M offers).

    ``departements`` limits the data to those codes (``["14", "75"]``); ``reference_dir`` holds the
    communes table (default: the settings' reference-data directory). Liberal doctors take part in the
    SAS with probability ``gp_participation`` (general practice) or ``other_participation`` (other
    specialties); ``vendor_share`` of participants publish their agenda through a vendor. The defaults
    describe today's platform; the search benchmark raises them to the target state (most liberal
    doctors' online agendas aggregated).
    """
    _check_shares(gp_participation=gp_participation, other_participation=other_participation,
                  vendor_share=vendor_share)
    import time

    if not 100 <= places <= MAX_PLACES:
        raise ValueError(f"places must be between 100 and {MAX_PLACES:,}")
    started = time.perf_counter()
    if reference_dir is None:
        from sas_core.settings import Settings

        reference_dir = Settings().reference_data_dir
    reference = Path(reference_dir) if reference_dir else None
    communes = load_communes(reference)
    wanted = {d.strip().upper().zfill(2) for d in departements} if departements else None
    specialties = load_specialties(reference).labels
    gen = _Gen(communes=communes, departements=wanted, seed=seed, specialties=specialties)
    book = gen.book = AddressBook(communes)
    rng = gen.rng
    moment = (extracted_at or utcnow()).astimezone(timezone.utc)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = moment.strftime("%Y%m%d%H%M")
    day = moment.strftime("%Y%m%d")

    # ---- structures: CPTS, MSP, centres (FINESS), SOS places (RPPS), other FINESS categories --------
    counts: Counter[str] = Counter()
    structures = _finess_structures(gen, places, counts)
    sos_places = _sos_places(gen, places, counts)

    # ---- practitioners and their places: lines written as they are made ---------------------------
    rpps_name = f"PS_LibreAcces_Personne_activite_{stamp}.txt"
    rpps_path = out / rpps_name
    practitioners = _Practitioners(gen, structures, gp_participation=gp_participation,
                                   other_participation=other_participation, vendor_share=vendor_share)
    with rpps_path.open("w", encoding="utf-8", newline="\n") as handle:
        practitioners.write(handle, places=places, sos_places=sos_places)
    participation_rows = practitioners.participation_rows
    participation_rows += _structure_participation(rng, sos_places, structures)

    # ---- write ------------------------------------------------------------------------------------
    if zip_rpps:
        zip_path = out / f"PS_LibreAcces_{stamp}.zip"
        with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.write(rpps_path, rpps_name)
        rpps_path.unlink()
        rpps_path = zip_path

    finess_path = out / f"etalab-cs1100507-stock-{day}-0336.csv"
    _write_finess(finess_path, structures, rng=rng, day=moment, book=book)
    address_paths = book.write(out, projections={d: epsg for d, (epsg, _label) in PROJECTION.items()})
    participation_path = out / f"sas-participation-{day}.csv"
    with participation_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";", lineterminator="\n")
        writer.writerow(PARTICIPATION_HEADER)
        writer.writerows(participation_rows)
    return GeneratedDirectory(
        rpps=rpps_path, finess=finess_path, participation=participation_path, places=practitioners.places,
        practitioners=practitioners.count, rpps_lines=practitioners.rpps_lines, structures=counts,
        participants=len(participation_rows), seconds=time.perf_counter() - started, addresses=address_paths,
    )


def _check_shares(**shares: float) -> None:
    for name, share in shares.items():
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {share}")


def _spread(gen: _Gen, total: int) -> dict[str, int]:
    """``total`` over the départements: largest remainder by population, at least one where there are many."""
    depts = sorted(gen.by_dept)
    total_pop = sum(gen.dept_pop.values())
    shares = {d: total * gen.dept_pop[d] / total_pop for d in depts}
    base = {d: int(v) for d, v in shares.items()}
    rest = total - sum(base.values())
    for d in sorted(depts, key=lambda d: (-(shares[d] - base[d]), d))[:max(0, rest)]:
        base[d] += 1
    return base


_STRUCTURE_PREFIXES = {
    "cpts": ("CPTS ", "CPTS DU PAYS DE ", "CPTS SUD ", "CPTS NORD "),
    "msp": ("MSP ", "MAISON DE SANTE ", "POLE DE SANTE "),
    "centre": ("CENTRE DE SANTE ", "CENTRE MEDICAL ", "CDS MUNICIPAL "),
}


def _finess_structures(gen: _Gen, places: int, counts: Counter[str]) -> list[_Structure]:
    """The FINESS establishments: CPTS, MSP and health centres by ``places``, then other categories."""
    rng = gen.rng
    structures: list[_Structure] = []
    seq = 0
    for kind, divisor, category in (("cpts", 350, "604"), ("msp", 150, "603"), ("centre", 120, "124")):
        for d, n in _spread(gen, max(1, places // divisor)).items():
            for _ in range(n):
                seq += 1
                c = gen.commune_in(d)
                number, stype, street = gen.street()
                name = rng.choice(_STRUCTURE_PREFIXES[kind]) + _upper_ascii(c.name)
                structures.append(_Structure(kind, gen.finess(c, seq), name, c, number, stype, street,
                                             gen.phone(c.departement), gen.siret(), category,
                                             FINESS_CATEGORY_LABELS[category]))
                counts[kind] += 1
    for d, n in _spread(gen, max(1, places // 100)).items():
        for _ in range(n):
            seq += 1
            c = gen.commune_in(d)
            category, label, prefix = rng.choice(OTHER_FINESS)
            number, stype, street = gen.street()
            structures.append(_Structure("other", gen.finess(c, seq), f"{prefix} {_upper_ascii(c.name)}", c,
                                         number, stype, street, gen.phone(c.departement), gen.siret(),
                                         category, label))
            counts["other_finess"] += 1
    return structures


def _sos_places(gen: _Gen, places: int, counts: Counter[str]) -> list[_Structure]:
    """SOS Médecins places in the big cities (none below 300 places)."""
    sos_places: list[_Structure] = []
    if places < 300:
        return sos_places
    for city, n in gen.big_cities[: max(1, places // 3000)]:
        for _ in range(n):
            number, stype, street = gen.street()
            plm_city = _city_label(gen.rng, city)
            sos_places.append(_Structure("sos", gen.technical_id("S"), f"SOS MEDECINS {plm_city}", city, number,
                                         stype, street, gen.phone(city.departement), gen.siret()))
            counts["sos"] += 1
    return sos_places


def _structure_participation(rng: random.Random, sos_places: list[_Structure],
                             structures: list[_Structure]) -> list[list[str]]:
    """The participation rows of the SOS places, the CPTS and some MSP and centres."""
    rows = [["sos", s.ident, "1", "", "1", s.phone, "sosplanning", "", SOS_HOURS] for s in sos_places]
    for s in structures:
        if s.kind == "cpts":
            rows.append(["cpts", s.ident, "1", "", "1", s.phone,
                         rng.choice(("cpts-planning", "terrisante", "")), "", ""])
        elif s.kind in {"msp", "centre"} and rng.random() < 0.3:
            rows.append([s.kind, s.ident, "1", "", "0", "", rng.choice(DEMO_VENDOR_IDS), "", ""])
    return rows


@dataclass
class _Person:
    """A practitioner's identity, as every one of its RPPS lines repeats it."""

    national: str
    id_type: str
    raw: str
    profession: str
    code: str
    mode: str
    first: str
    last: str
    female: bool


class _Practitioners:
    """The practitioners (in identifier order) and their RPPS lines; their participation rows."""

    def __init__(self, gen: _Gen, structures: list[_Structure], *, gp_participation: float,
                 other_participation: float, vendor_share: float) -> None:
        self.gen = gen
        self.rng = gen.rng
        self.gp_participation = gp_participation
        self.other_participation = other_participation
        self.vendor_share = vendor_share
        self.cpts_by_dept: dict[str, list[_Structure]] = {}
        self.health_by_dept: dict[str, list[_Structure]] = {}
        for s in structures:
            if s.kind == "cpts":
                self.cpts_by_dept.setdefault(s.commune.departement, []).append(s)
            elif s.kind in {"msp", "centre"}:
                self.health_by_dept.setdefault(s.commune.departement, []).append(s)
        self.adeli_seen: set[str] = set()
        self.group_cabinets: dict[str, list[tuple]] = {}
        self.participation_rows: list[list[str]] = []
        self.count = 0
        self.rpps_lines = 0
        self.places = 0

    def _place_counts(self, places: int, sos_places: list[_Structure]) -> tuple[list[int], list[_Structure]]:
        """Places per non-SOS practitioner (1 to 3), and the SOS place of each SOS doctor."""
        rng = self.rng
        sos_assignment: list[_Structure] = []
        for s in sos_places:
            sos_assignment.extend([s] * rng.randint(6, 12))
        sos_assignment = sos_assignment[: places // 3]
        remaining = places - len(sos_assignment)
        place_counts: list[int] = []
        while remaining > 0:
            r = rng.random()
            k = 1 if r < 0.88 else (2 if r < 0.98 else 3)
            k = min(k, remaining)
            place_counts.append(k)
            remaining -= k
        return place_counts, sos_assignment

    def write(self, handle, *, places: int, sos_places: list[_Structure]) -> None:
        """Write the RPPS file's header and lines to ``handle`` (nothing piles up in memory)."""
        rng = self.rng
        place_counts, sos_assignment = self._place_counts(places, sos_places)
        sos_doctors = len(sos_assignment)
        self.count = len(place_counts) + sos_doctors
        rpps_numbers = sorted(rng.sample(range(1_000_000_000, 1_100_000_000), self.count))
        handle.write("|".join(RPPS_HEADER) + "|\n")
        buffer: list[str] = []
        order = list(range(self.count))
        rng.shuffle(order)  # SOS doctors get ids spread through the file, as real ones are
        sos_slots = set(order[:sos_doctors])
        place_iter = iter(place_counts)
        sos_iter = iter(sos_assignment)
        for index, number in enumerate(rpps_numbers):
            is_sos = index in sos_slots
            person = self._person(number, is_sos=is_sos)
            place_total = 1 if is_sos else next(place_iter)
            home = self.gen.commune()
            participant = person.profession == "10" and person.mode == "L" and rng.random() < (
                self.gp_participation if person.code in GP_CODES else self.other_participation)
            if is_sos:
                self.places += 1
                sos = next(sos_iter)
                lines = [self._line(person, structure=sos, commune=sos.commune, sector="SA08")]
            else:
                lines = self._practice_lines(person, home, place_total)
            for line in lines:
                buffer.append("|".join(line) + "|\n")
            if len(buffer) >= 5000:
                handle.write("".join(buffer))
                buffer.clear()
            self.rpps_lines += len(lines)
            if participant or is_sos:
                self._participation(person, home, is_sos=is_sos, participant=participant)
        handle.write("".join(buffer))

    def _person(self, number: int, *, is_sos: bool) -> _Person:
        gen, rng = self.gen, self.rng
        profession, _w, id_type = ("10", 0, "8") if is_sos else \
            PROFESSION_MIX[bisect.bisect_left(gen.prof_cum, rng.random() * gen.prof_cum[-1])]
        raw = str(number) + luhn_key(str(number)) if id_type == "8" else self._adeli(profession)
        female = rng.random() < (0.52 if profession == "10" else 0.7)
        first = rng.choice(FIRST_NAMES_F if female else FIRST_NAMES_M)
        last = rng.choice(SURNAMES)
        if profession == "10":
            code = "SM54" if is_sos else DOCTOR_SPECIALTIES[
                bisect.bisect_left(gen.spec_cum, rng.random() * gen.spec_cum[-1])][0]
            mode = "L" if is_sos else ("L" if rng.random() < 0.62 else ("S" if rng.random() < 0.9 else "B"))
        else:
            code = ""
            mode = "L" if rng.random() < 0.7 else ("S" if rng.random() < 0.95 else "B")
        return _Person(id_type + raw, id_type, raw, profession, code, mode, first, last, female)

    def _adeli(self, profession: str) -> str:
        """A new ADELI number (8 characters + Luhn key), in the département of a drawn commune."""
        home = self.gen.commune()
        d = home.departement[:2] if not home.departement.startswith("97") else "97"
        while True:
            body = f"{d}{profession}{self.rng.randint(0, 9999):04d}"
            if body not in self.adeli_seen:
                self.adeli_seen.add(body)
                break
        return body + luhn_key(body.replace("A", "0").replace("B", "0"))

    def _line(self, person: _Person, **place) -> list[str]:
        return _rpps_line(self.gen, person.national, person.id_type, person.raw, person.profession, person.code,
                          person.mode, person.first, person.last, person.female, **place)

    def _practice_lines(self, person: _Person, home: Commune, place_total: int) -> list[list[str]]:
        """The lines of a practitioner's ``place_total`` places (its first one in ``home``)."""
        gen, rng = self.gen, self.rng
        lines: list[list[str]] = []
        for p in range(place_total):
            self.places += 1
            commune = home if p == 0 else gen.commune_in(home.departement)
            structure, commune, sector = self._structure_of(person, commune, lines)
            no_address = rng.random() < (0.25 if person.mode == "S" else 0.015)
            group = None
            if structure is None and not no_address and person.mode == "L" and rng.random() < 0.35:
                group = self._group_cabinet(commune, lines)
                sector = "SA08"
            lines.append(self._line(person, structure=structure, commune=commune, sector=sector, group=group,
                                    no_address=no_address))
            # A few doctors hold a second ordinal specialty at the same place: a second line.
            if person.profession == "10" and rng.random() < 0.03:
                second = rng.choice(("SM59", "SM26", "SM57", "SM18"))
                if second != person.code:
                    extra = list(lines[-1])
                    extra[15], extra[16] = second, gen.labels.get(second, second)
                    lines.append(extra)
        return lines

    def _structure_of(self, person: _Person, commune: Commune,
                      lines: list[list[str]]) -> tuple[_Structure | None, Commune, str]:
        """(structure, commune, activity sector) of a place: a hospital, an MSP or centre, or a cabinet."""
        rng = self.rng
        if person.mode == "S" and rng.random() < 0.6:
            return None, commune, "SA01"
        if person.profession == "10" and self.health_by_dept.get(commune.departement) and rng.random() < 0.12:
            structure = rng.choice(self.health_by_dept[commune.departement])
            if any(line[23] == "F" + structure.ident for line in lines):
                return None, commune, "SA07"  # already one of this practitioner's places
            return structure, structure.commune, "SA05" if structure.kind == "centre" else "SA16"
        return None, commune, "SA07"

    def _group_cabinet(self, commune: Commune, lines: list[list[str]]) -> tuple:
        """A group cabinet of ``commune`` this practitioner is not in yet (often an existing one)."""
        gen, rng = self.gen, self.rng
        cabinets = self.group_cabinets.setdefault(commune.insee, [])
        used = {line[23] for line in lines}
        free = [c for c in cabinets if c[0] not in used]
        if free and rng.random() < 0.6:
            return rng.choice(free)
        group = (gen.technical_id(), *gen.street(), gen.phone(commune.departement), gen.siret())
        cabinets.append(group)
        return group

    def _participation(self, person: _Person, home: Commune, *, is_sos: bool, participant: bool) -> None:
        """Draw a participant's participation (SOS doctors draw too, and keep none: their place takes part)."""
        gen, rng = self.gen, self.rng
        dept = home.departement
        via = ""
        if self.cpts_by_dept.get(dept) and rng.random() < 0.35 and not is_sos:
            via = min(self.cpts_by_dept[dept],
                      key=lambda s: (s.commune.lat - home.lat) ** 2 + (s.commune.lon - home.lon) ** 2).ident
        beyond = rng.random() < 0.3
        vendor = rng.choice(DEMO_VENDOR_IDS) if rng.random() < self.vendor_share else ""
        sector_conv = "1" if rng.random() < 0.75 else ("2" if rng.random() < 0.9 else "3")
        if participant:
            self.participation_rows.append(["ps", person.national, "1", via, "1" if beyond else "0",
                                            gen.phone(dept, mobile=True) if beyond else "", vendor, sector_conv,
                                            ""])


def _rpps_line(gen: _Gen, national: str, id_type: str, raw: str, profession: str, code: str, mode: str,
               first: str, last: str, female: bool, *, structure: _Structure | None, commune: Commune,
               sector: str, group: tuple | None = None, no_address: bool = False) -> list[str]:
    rng = gen.rng
    f = [""] * len(RPPS_HEADER)
    f[0], f[1], f[2] = id_type, raw, national
    if profession in {"10", "40"}:
        f[3], f[4] = "DR", "Docteur"
    f[5], f[6] = ("MME", "Madame") if female else ("M", "Monsieur")
    f[7], f[8] = last, first
    f[9], f[10] = profession, PROFESSIONS[profession]
    f[11], f[12] = "C", "Civil"
    if code:
        f[13], f[14], f[15], f[16] = "S", "Spécialité ordinale", code, gen.labels.get(code, code)
    f[17], f[18] = mode, EXERCISE_MODES[mode]
    dept = commune.departement
    f[44], f[45] = dept, DEPARTEMENT_NAMES.get(dept, "")
    f[47] = "CNOM/CNOM/CNOM" if profession == "10" else "ARS/ARS/ARS"
    f[48], f[49] = sector, ACTIVITY_SECTORS.get(sector, "")
    if no_address:
        f[23] = gen.technical_id()
        f[24] = "CENTRE HOSPITALIER" if sector == "SA01" else ""
        return f
    if structure is not None:
        number, stype, street, phone = _structure_fields(f, structure)
    elif group is not None:
        tech, number, stype, street, phone, siret = group
        f[19], f[20], f[23] = siret, siret[:9], tech
        f[24] = f"CABINET MEDICAL {street}" if profession == "10" else f"CABINET {street}"
    else:
        number, stype, street, phone = _own_cabinet_fields(gen, f, commune, profession=profession, last=last,
                                                           sector=sector)
    f[28] = number
    if rng.random() < 0.04:
        f[29] = rng.choice(("B", "T"))
    f[30], f[31], f[32] = stype[0], stype[1], street
    if gen.book is not None:
        gen.book.register(commune, number, f[29], stype[1], street)  # its BAN line (no draw from gen.rng)
    _postal_fields(gen, f, commune, phone)
    return f


def _structure_fields(f: list[str], structure: _Structure) -> tuple[str, tuple, str, str]:
    """A place in an establishment: its SIRET, FINESS (MSP, centre) and name; (number, type, street, phone)."""
    f[19], f[20] = structure.siret, structure.siret[:9]
    if structure.kind in {"msp", "centre"}:
        f[21] = structure.ident
        f[23] = "F" + structure.ident
    else:
        f[23] = structure.ident
    f[24] = structure.name
    return structure.number, structure.street_type, structure.street, structure.phone


def _own_cabinet_fields(gen: _Gen, f: list[str], commune: Commune, *, profession: str, last: str,
                        sector: str) -> tuple[str, tuple, str, str]:
    """A place of its own (a hospital or a cabinet, some with a SIRET); (number, type, street, phone)."""
    rng = gen.rng
    number, stype, street = gen.street()
    phone = gen.phone(commune.departement)
    f[23] = gen.technical_id()
    if sector == "SA01":
        f[24] = f"CENTRE HOSPITALIER {_city_label(rng, commune)}"
    else:
        f[24] = f"CABINET DU DR {last}" if profession == "10" else f"CABINET {last}"
        if rng.random() < 0.5:
            f[19] = gen.siret()
            f[20] = f[19][:9]
    return number, stype, street, phone


def _postal_fields(gen: _Gen, f: list[str], commune: Commune, phone: str) -> None:
    """Postcode, city (some lines CEDEX), INSEE code and phone of a place's line."""
    rng = gen.rng
    postcode = commune.postcodes[0]
    city = _city_label(rng, commune)
    if rng.random() < 0.015:
        cedex = _cedex_postcode(rng, commune, gen.known_postcodes)
        if cedex:
            f[34] = f"{cedex} {city} CEDEX"
            f[35] = cedex
            f[37] = city
            f[40] = phone
            return
    f[34] = f"{postcode} {city}"
    f[35] = postcode
    if rng.random() < 0.55:
        f[36] = commune.insee
    f[37] = city
    if rng.random() < 0.85:
        f[40] = phone


def _write_finess(path: Path, structures: list[_Structure], *, rng: random.Random, day: datetime,
                  book: AddressBook | None = None) -> None:
    transformers: dict[int, Transformer] = {}
    lines: list[str] = []
    positions: list[str] = []
    date = day.strftime("%Y-%m-%d")
    for s in structures:
        if s.kind == "sos":
            continue
        c = s.commune
        d = c.departement
        finess_dept = FINESS_DEPT.get(d, d)
        commune_code = c.insee[2:] if not d.startswith("97") else c.insee[2:]
        values = {name: "" for name in STRUCTURE_COLUMNS}
        values.update(
            nofinesset=s.ident,
            nofinessej=s.ident[:2] + "0" + s.ident[3:],
            rs=s.name[:38],
            rslongue=s.name,
            numvoie=s.number,
            typvoie=s.street_type[0],
            voie=s.street,
            commune=commune_code,
            departement=finess_dept,
            libdepartement=_upper_ascii(DEPARTEMENT_NAMES.get(d, "")),
            ligneacheminement=f"{c.postcodes[0]} {_upper_ascii(c.name)}",
            telephone=s.phone,
            categetab=s.category,
            libcategetab=s.category_label,
            siret=s.siret,
            dateouv=f"20{rng.randint(10, 23)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
            datemaj=date,
        )
        lines.append("structureet;" + ";".join(values[name] for name in STRUCTURE_COLUMNS))
        if rng.random() < 0.03:
            continue  # a few establishments have no position: the loader falls back to the commune
        epsg, label = PROJECTION.get(d, (2154, "LAMBERT_93"))
        transformer = transformers.get(epsg)
        if transformer is None:
            transformer = transformers[epsg] = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
        # A few hundred metres around the commune centroid: the building is somewhere in town.
        lat = c.lat + rng.uniform(-0.003, 0.003)
        lon = c.lon + rng.uniform(-0.004, 0.004) / max(0.2, math.cos(math.radians(c.lat)))
        if book is not None:
            # FINESS geolocates at the address: the same point as the address file's.
            lat, lon = book.register(c, s.number, "", s.street_type[1], s.street)
        x, y = transformer.transform(lon, lat)
        positions.append(f"geolocalisation;{s.ident};{x:.1f};{y:.1f};1,ATLASANTE,100,IGN,BD_ADRESSE,V2.2,{label};{date}")
    with path.open("w", encoding="latin-1", errors="replace", newline="\n") as handle:
        handle.write(f"finess;etalab;{len(lines)};{date}\n")
        for line in lines:
            handle.write(line + "\n")
        for line in positions:
            handle.write(line + "\n")
