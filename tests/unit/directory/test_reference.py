"""Official-format parsers of ``sas reference download`` on small local files and a local server."""

import pytest

from connectors.directory.nomenclatures import load_specialties
from connectors.geocoding import Gazetteer
from connectors.reference import (
    build_communes,
    download_reference,
    load_communes,
    parse_laposte_hexasmal,
    parse_tre_r38_codesystem,
)
from sas_core.errors import BackendUnavailable, DataQualityError
from tests.unit.directory.conftest import json_body

LAPOSTE = (
    "#Code_commune_INSEE;Nom_de_la_commune;Code_postal;Libellé_d_acheminement;Ligne_5\n"
    "14118;CAEN;14000;CAEN;\n"
    "75115;PARIS 15;75015;PARIS;\n"
    "01001;L ABERGEMENT CLEMENCIAT;01400;L ABERGEMENT CLEMENCIAT;\n"
    "01001;L ABERGEMENT CLEMENCIAT;01401;L ABERGEMENT CLEMENCIAT;HAMEAU\n"
)
COMMUNES = [
    {"code": "14118", "nom": "Caen", "codeDepartement": "14", "codeRegion": "28", "population": 108200,
     "codesPostaux": ["14000"], "centre": {"type": "Point", "coordinates": [-0.3698, 49.1848]}},
    {"code": "75115", "nom": "Paris 15e Arrondissement", "codeDepartement": "75", "codeRegion": "11",
     "codesPostaux": ["75015"], "centre": {"type": "Point", "coordinates": [2.2936, 48.8402]}},
    {"code": "01001", "nom": "L'Abergement-Clémenciat", "codeDepartement": "01", "codeRegion": "84",
     "population": 860, "codesPostaux": ["01400"], "centre": {"type": "Point", "coordinates": [4.9261, 46.1534]}},
    {"code": "99999", "nom": "Sans centre", "codeDepartement": "99"},
]
TRE_R38 = {"resourceType": "CodeSystem", "url": "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/",
           "concept": [{"code": "SM54", "display": "Médecine générale (SM)"},
                       {"code": "SM40", "display": "Pédiatrie (SM)",
                        "concept": [{"code": "SM87", "display": "Pédiatrie option néonatologie (SM)"}]}]}


def test_laposte_postcodes_by_insee():
    postcodes = parse_laposte_hexasmal(LAPOSTE)
    assert postcodes["01001"] == {"01400", "01401"}
    assert postcodes["75115"] == {"75015"}
    with pytest.raises(DataQualityError):
        parse_laposte_hexasmal("foo;bar\n1;2\n")


def test_build_communes_joins_postcodes_and_centroids():
    import json

    communes = {c.insee: c for c in build_communes(LAPOSTE, json.dumps(COMMUNES))}
    assert set(communes) == {"14118", "75115", "01001"}  # no centroid, no commune
    assert communes["01001"].postcodes == ("01400", "01401")
    assert (communes["14118"].lat, communes["14118"].lon, communes["14118"].population) == (49.1848, -0.3698, 108200)
    assert communes["75115"].population is None


def test_tre_r38_codesystem_flattens_nested_concepts():
    labels = parse_tre_r38_codesystem(__import__("json").dumps(TRE_R38))
    assert labels == {"SM54": "Médecine générale (SM)", "SM40": "Pédiatrie (SM)",
                      "SM87": "Pédiatrie option néonatologie (SM)"}
    with pytest.raises(DataQualityError):
        parse_tre_r38_codesystem('{"resourceType": "ValueSet"}')


def test_download_builds_the_tables_the_platform_reads(local_server, tmp_path):
    files = {"/laposte.csv": ("text/csv", LAPOSTE.encode("latin-1")),  # older exports are Latin-1
             "/communes.json": ("application/json", json_body(COMMUNES)),
             "/tre_r38.json": ("application/fhir+json", json_body(TRE_R38))}

    def handler(method, path, headers):
        content_type, body = files.get(path, ("text/plain", b""))
        return (200 if path in files else 404), content_type, body

    server = local_server(handler)
    result = download_reference(reference_dir=tmp_path, sources={
        "laposte": server.url + "/laposte.csv", "communes": server.url + "/communes.json",
        "tre_r38": server.url + "/tre_r38.json"})
    assert result["communes"] == 3 and result["specialties"] == 3
    communes = load_communes(tmp_path)
    gazetteer = Gazetteer(communes)
    assert gazetteer.locate(postcode="01401", city="L'ABERGEMENT-CLEMENCIAT").insee == "01001"
    assert gazetteer.locate(postcode="75015", city="PARIS").insee == "75115"
    assert load_specialties(tmp_path).label("SM87") == "Pédiatrie option néonatologie (SM)"
    assert (tmp_path / "laposte_hexasmal.csv").is_file()


def test_download_failure_is_a_clear_error(local_server, tmp_path):
    server = local_server(lambda m, p, h: (503, "text/plain", b"down"))
    with pytest.raises(BackendUnavailable, match="HTTP 503"):
        download_reference(reference_dir=tmp_path, sources={"laposte": server.url + "/x"})
    assert not (tmp_path / "communes_fr.csv").exists()
