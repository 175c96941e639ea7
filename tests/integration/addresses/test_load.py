"""``sas addresses load`` and the directory load that uses the address base (issue 16, point 2a)."""

from __future__ import annotations

import gzip
import uuid

import pytest
from elasticsearch import helpers
from typer.testing import CliRunner

from connectors.addresses import BAN_HEADER, address_key, street_key
from indexer.addresses import address_count, load_addresses
from indexer.lifecycle import drop_prefix, setup_indices
from sas_core.errors import DataQualityError

pytestmark = pytest.mark.integration

HEADER = ";".join(BAN_HEADER)


def line(ident: str, number: str, street: str, lat: float, lon: float, *, rep: str = "", insee: str = "14118",
         postcode: str = "14000", city: str = "Caen") -> str:
    values = {"id": ident, "id_fantoir": ident.rsplit("_", 1)[0], "numero": number, "rep": rep, "nom_voie": street,
              "code_postal": postcode, "code_insee": insee, "nom_commune": city, "lon": f"{lon}", "lat": f"{lat}",
              "type_position": "entrée", "certification_commune": "1"}
    return ";".join(values.get(name, "") for name in BAN_HEADER)


CAEN = [HEADER,
        line("14118_0420_00001", "1", "Rue de la Paix", 49.1801, -0.3702),
        line("14118_0420_00003", "3", "Rue de la Paix", 49.1803, -0.3704),
        line("14118_0420_00012", "12", "Rue de la Paix", 49.1809, -0.3712, rep="bis"),
        line("14118_0777_00005", "5", "Boulevard Maréchal Leclerc", 49.1820, -0.3600)]


@pytest.fixture
def local(es, settings):
    prefix = f"{settings.index_prefix}-adl{uuid.uuid4().hex[:4]}"
    setup_indices(es, prefix=prefix)
    yield settings.model_copy(update={"index_prefix": prefix})
    drop_prefix(es, prefix=prefix)


def test_load_is_idempotent_with_street_documents(es, local, tmp_path):
    path = tmp_path / "adresses-14.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(CAEN) + "\n").encode()))
    first = load_addresses(settings=local, es=es, paths=[path])
    assert (first.lines_read, first.addresses, first.streets, first.rejected) == (4, 4, 2, 0)
    assert address_count(es, local) == {"address": 4, "street": 2}
    alias = f"{local.index_prefix}-addresses"
    doc = es.get(index=alias, id="14118_0420_00012")["_source"]
    assert doc["label"] == "12 bis Rue de la Paix 14000 Caen" and doc["address_key"] == address_key(
        "14118", "RUE DE LA PAIX", "12", "B")
    street = es.get(index=alias, id="voie-14118_0420")["_source"]
    # The street sits at its middle number (a point on the street), and knows how many numbers it has.
    assert street["location"] == {"lat": 49.1803, "lon": -0.3704} and street["numbers"] == 3
    assert street["street_key"] == street_key("14118", "R DE LA PAIX")
    again = load_addresses(settings=local, es=es, paths=[path])
    assert (again.addresses, again.streets) == (4, 2)
    assert address_count(es, local) == {"address": 4, "street": 2}   # overwritten, never duplicated


def test_a_broken_file_is_refused_with_its_reasons(es, local, tmp_path):
    bad = tmp_path / "adresses-14.csv"
    bad.write_text("\n".join([HEADER, CAEN[1], "a;b;c", CAEN[2].replace("49.1803", "north")]) + "\n", encoding="utf-8")
    with pytest.raises(DataQualityError, match=r"2 of 3 lines rejected .*wrong_column_count=1"):
        load_addresses(settings=local, es=es, paths=[bad])
    # The same file within a lenient threshold: loaded, the bad lines counted by reason.
    summary = load_addresses(settings=local, es=es, paths=[bad], threshold=0.9)
    assert summary.addresses == 1 and dict(summary.rejected_by_reason) == {"wrong_column_count": 1,
                                                                            "bad_coordinates": 1}


def test_cli_loads_files_and_fails_clearly(es, local, tmp_path, monkeypatch):
    from sas_cli.main import app

    monkeypatch.setenv("SAS_INDEX_PREFIX", local.index_prefix)
    monkeypatch.setenv("SAS_ES_URL", local.es_url)
    good = tmp_path / "adresses-14.csv"
    good.write_text("\n".join(CAEN) + "\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["addresses", "load", str(good)])
    assert result.exit_code == 0, result.output
    assert "4 addresses and 2 streets written" in result.output
    wrong = tmp_path / "PS_LibreAcces.txt"
    wrong.write_text("Type d'identifiant PP|Identifiant PP|\n", encoding="utf-8")
    result = runner.invoke(app, ["addresses", "load", str(wrong)])
    assert result.exit_code == 2 and "not a BAN adresses CSV" in result.output and "Traceback" not in result.output


def test_directory_offers_sit_at_their_ban_point(es, demo_world):
    """Every offer the load placed at ``address`` precision from the base is at the base's point for its
    number, and ``street`` ones at their street's point: the same keys, both ways."""
    offers = [h["_source"] for h in helpers.scan(es, index=demo_world.alias("offers"),
                                                 query={"query": {"term": {"geo_source": "addresses"}}})]
    assert len(offers) > 100
    by_key = {}
    for hit in helpers.scan(es, index=demo_world.alias("addresses")):
        src = hit["_source"]
        by_key[src["address_key"] if src["kind"] == "address" else src["street_key"]] = src["location"]
    checked = 0
    for offer in offers:
        # The offer's own address fields, re-keyed as the loader keyed them.
        line_text = offer["address"]["line"] or ""
        insee = offer["address"]["insee"]
        number, _, rest = line_text.partition(" ")
        rep = ""
        if rest.split(" ", 1)[0] in {"bis", "ter"}:
            rep, _, rest = rest.partition(" ")
        key = address_key(insee, rest, number, rep) if offer["geo_precision"] == "address" else street_key(insee, rest)
        if key in by_key:
            assert offer["location"] == by_key[key], offer["id"]
            checked += 1
    assert checked > 0.9 * len(offers)


def test_prune_deletes_what_the_base_lost_within_a_cap(es, local, tmp_path):
    path = tmp_path / "adresses-14.csv"
    many = [line(f"14118_0900_{n:05d}", str(n), "Rue Longue", 49.18 + n / 100_000, -0.37) for n in range(1, 121)]
    path.write_text("\n".join([*CAEN, *many]) + "\n", encoding="utf-8")
    load_addresses(settings=local, es=es, paths=[path])
    assert address_count(es, local) == {"address": 124, "street": 3}
    # Number 3 of rue de la Paix left the base; everything else is still there.
    path.write_text("\n".join([CAEN[0], CAEN[1], *CAEN[3:], *many]) + "\n", encoding="utf-8")
    kept = load_addresses(settings=local, es=es, paths=[path])          # without --prune: nothing deleted
    assert kept.deleted == 0 and address_count(es, local)["address"] == 124
    pruned = load_addresses(settings=local, es=es, paths=[path], prune=True)
    assert pruned.deleted == 1 and address_count(es, local) == {"address": 123, "street": 3}
    alias = f"{local.index_prefix}-addresses"
    assert not es.exists(index=alias, id="14118_0420_00003")
    # A truncated export (most of rue Longue gone) is refused and deletes nothing.
    path.write_text("\n".join([*CAEN, *many[:10]]) + "\n", encoding="utf-8")
    with pytest.raises(DataQualityError, match=r"prune refused for département 14: it would delete 110"):
        load_addresses(settings=local, es=es, paths=[path], prune=True)
    assert address_count(es, local) == {"address": 124, "street": 3}   # the 3 came back, none deleted
