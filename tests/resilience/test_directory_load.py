"""Directory loads of damaged national files (issue 14, point 4), on the suite's own Elasticsearch node.

The files are generated in the real formats (``simulator/generate/directory.py``, as ``sas directory
generate`` does), then damaged the way real downloads and hand edits damage them, and loaded by the real
loader: a share of RPPS lines broken (the load stays under the reject threshold), lines that name nothing
any more, practitioners really gone (with harvested slots), a FINESS file re-encoded in UTF-8 or holding
bytes no encoding explains, a truncated or corrupted zip.

Invariants: an offer whose line was rejected is kept (and counted); a load that would delete more than the
cap fails, says why and deletes nothing; the slots of offers really gone are removed; accented FINESS
names read right whatever the encoding; a damaged zip is reported as such.
"""

from __future__ import annotations

import random
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from elasticsearch import helpers

from indexer.directory import build_directory_geocoder, load_directory
from indexer.lifecycle import drop_prefix, setup_indices
from mappings.registry import alias_name
from sas_core.errors import DataQualityError
from simulator.generate.directory import generate_directory

EXTRACTED = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
PLACES = 400
BROKEN_SHARE = 0.16                # the figure: under the default reject threshold of 20 %


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One generated directory (plain RPPS text) and the same one with the RPPS extraction zipped."""
    plain = generate_directory(out_dir=tmp_path_factory.mktemp("dirload-plain"), places=PLACES, departements=["47"],
                               seed=14, extracted_at=EXTRACTED)
    zipped = generate_directory(out_dir=tmp_path_factory.mktemp("dirload-zip"), places=PLACES, departements=["47"],
                                seed=14, extracted_at=EXTRACTED, zip_rpps=True)
    return plain, zipped


@pytest.fixture(scope="module")
def geocoder(settings):
    return build_directory_geocoder(settings)


@pytest.fixture
def world(own_node, test_prefix):
    """A fresh prefix on the own node; ``(settings, es)``."""
    node_settings, es = own_node
    prefix = f"{test_prefix}-dl{uuid.uuid4().hex[:4]}"
    setup_indices(es, prefix=prefix)
    yield node_settings.model_copy(update={"index_prefix": prefix}), es
    drop_prefix(es, prefix=prefix)


def _load(settings, es, geocoder, rpps, finess=None, **kw):
    return load_directory(settings=settings, es=es, rpps_path=rpps, finess_path=finess, full=True, progress=False,
                          geocoder=geocoder, **kw)


def _offers(es, settings) -> dict[str, dict]:
    alias = alias_name(settings.index_prefix, "offers")
    es.indices.refresh(index=alias)
    return {h["_id"]: h["_source"] for h in helpers.scan(es, index=alias, query={"query": {"match_all": {}}})}


def _rpps_lines(path: Path) -> tuple[bytes, list[bytes]]:
    lines = path.read_bytes().splitlines(keepends=True)
    return lines[0], lines[1:]


def _write_rpps(folder: Path, original: Path, header: bytes, lines: list[bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / original.name       # same name: same extraction date
    target.write_bytes(header + b"".join(lines))
    return target


def _break(line: bytes, how: int) -> bytes:
    """Damage one RPPS line in one of the ways seen in real files (each is a different rejection)."""
    f = line.rstrip(b"\n").split(b"|")
    if how == 3 and f[0] != b"8":
        how = 2                            # ADELI numbers have no check digit: a typo there is not seen
    if how == 0:                           # street columns glued (separators lost): wrong column count
        f[30:33] = [f[30] + f[31] + f[32]]
    elif how == 1:                         # a Latin-1 byte in the name: not UTF-8
        f[7] = f[7] + b"\xc9"
    elif how == 2:                         # a profession code that does not exist
        f[9] = b"77"
    else:                                  # the RPPS number mistyped: its key fails the check digit
        digit = (int(f[1][-1:]) + 1) % 10
        f[1] = f[1][:-1] + str(digit).encode()
        f[2] = f[0] + f[1]
    return b"|".join(f) + b"\n"


@pytest.mark.timeout(300)
def test_rejected_lines_under_the_threshold_keep_their_offers(world, files, geocoder, tmp_path):
    settings, es = world
    plain, _ = files
    first = _load(settings, es, geocoder, plain.rpps)
    before = _offers(es, settings)
    assert first.status == "success" and first.rejected == 0 and len(before) == first.places

    header, lines = _rpps_lines(plain.rpps)
    rng = random.Random(4)
    broken = sorted(rng.sample(range(len(lines)), int(len(lines) * BROKEN_SHARE)))
    for number, index in enumerate(broken):
        lines[index] = _break(lines[index], number % 4)
    damaged = _write_rpps(tmp_path / "broken", plain.rpps, header, lines)

    summary = _load(settings, es, geocoder, damaged)
    assert summary.status == "success"
    assert summary.rejected == len(broken) and summary.rejected_share > 0.15
    assert set(summary.rejected_by_reason) == {"wrong_column_count", "encoding_error", "unknown_profession",
                                               "invalid_rpps_key"}
    after = _offers(es, settings)
    assert summary.deleted == 0 and set(after) == set(before)
    assert summary.rejected_unkeyed == 0
    # Every offer the damaged file did not rebuild was kept because of its rejected line, and counted.
    assert summary.kept_rejected == len(before) - summary.places > 0.1 * len(before)
    assert all(after[i]["last_name"] == before[i]["last_name"] for i in before)  # no card without a name


@pytest.mark.timeout(300)
def test_a_load_deleting_more_than_the_cap_fails_and_deletes_nothing(world, files, geocoder, tmp_path):
    settings, es = world
    settings = settings.model_copy(update={"directory_max_delete_share": 0.05, "directory_max_delete_floor": 0})
    plain, _ = files
    _load(settings, es, geocoder, plain.rpps)
    before = _offers(es, settings)

    # 10 % of the lines turned into noise: rejected (under the threshold) but naming no one, no place.
    header, lines = _rpps_lines(plain.rpps)
    for index in random.Random(5).sample(range(len(lines)), len(lines) // 10):
        lines[index] = b"#" * 60 + b"\n"
    damaged = _write_rpps(tmp_path / "noise", plain.rpps, header, lines)

    with pytest.raises(DataQualityError) as raised:
        _load(settings, es, geocoder, damaged)
    message = str(raised.value)
    assert "would delete" in message and "SAS_DIRECTORY_MAX_DELETE_SHARE" in message
    assert "nothing was deleted" in message and "naming neither a professional nor a place" in message
    assert set(_offers(es, settings)) == set(before)
    runs = alias_name(settings.index_prefix, "harvest_runs")
    es.indices.refresh(index=runs)
    last = es.search(index=runs, size=1, sort=[{"started_at": "desc"}])["hits"]["hits"][0]["_source"]
    assert last["status"] == "failed" and last["deleted"] == 0 and "would delete" in last["errors"][0]


@pytest.mark.timeout(300)
def test_offers_really_gone_take_their_slots_with_them(world, files, geocoder, tmp_path):
    settings, es = world
    plain, _ = files
    _load(settings, es, geocoder, plain.rpps)
    before = _offers(es, settings)

    header, lines = _rpps_lines(plain.rpps)
    by_national: dict[bytes, list[int]] = {}
    for index, line in enumerate(lines):
        by_national.setdefault(line.split(b"|")[2], []).append(index)
    # Three practitioners with one line each leave the extraction; two others stay.
    single = [nat for nat, idx in by_national.items() if len(idx) == 1 and f"ps-{nat.decode()}-" in
              " ".join(before)][:5]
    gone, staying = single[:3], single[3:]
    offer_of = {nat: next(i for i in before if i.startswith(f"ps-{nat.decode()}-")) for nat in single}
    slots = alias_name(settings.index_prefix, "slots")
    for nat in single:
        for n in range(2):
            slot_id = f"v-{offer_of[nat]}-{n}"
            es.index(index=slots, id=slot_id, document={
                "id": slot_id, "vendor": "v", "vendor_slot_id": slot_id, "offer_id": offer_of[nat],
                "start": "2026-12-02T09:00:00+00:00"})
    # A slot left pointing at nothing by an earlier load (before slots went with their offers).
    orphan = "ps-810000000000-R99999999999999"
    es.index(index=slots, id="v-orphan", document={"id": "v-orphan", "vendor": "v", "vendor_slot_id": "o",
                                                   "offer_id": orphan, "start": "2026-12-02T10:00:00+00:00"})
    es.indices.refresh(index=slots)
    kept_lines = [line for index, line in enumerate(lines) if not any(index in by_national[nat] for nat in gone)]
    smaller = _write_rpps(tmp_path / "smaller", plain.rpps, header, kept_lines)

    summary = _load(settings, es, geocoder, smaller)
    assert summary.status == "success" and summary.deleted == 3
    after = _offers(es, settings)
    assert set(before) - set(after) == {offer_of[nat] for nat in gone}
    es.indices.refresh(index=slots)
    left = {h["_source"]["offer_id"] for h in helpers.scan(es, index=slots, query={"query": {"match_all": {}}})}
    assert left == {offer_of[nat] for nat in staying}        # no slot points at an offer that is gone
    assert left <= set(after)
    assert summary.slots_removed == 6 + 1 and summary.kept_rejected == 0


def _accented_finess(original: Path, folder: Path, *, encoding: str, extra: bytes = b"") -> Path:
    """The generated FINESS file with accented establishment names (as in the real one), saved in
    ``encoding``; ``extra`` is appended to the first name as raw bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for line in original.read_text(encoding="latin-1").splitlines():
        f = line.split(";")
        if f[0] == "structureet":
            f[3], f[4] = "SANTÉ " + f[3], "PÔLE SANTÉ " + f[4]
        raw = ";".join(f).encode(encoding)
        if f[0] == "structureet" and extra:
            mark = "SANTÉ ".encode(encoding)
            raw, extra = raw.replace(mark, mark + extra, 1), b""
        out.append(raw + b"\n")
    target = folder / original.name
    target.write_bytes(b"".join(out))
    return target


@pytest.mark.timeout(300)
def test_a_finess_file_in_utf8_gives_the_right_accented_names(world, files, geocoder, tmp_path):
    settings, es = world
    plain, _ = files
    latin = _accented_finess(plain.finess, tmp_path / "latin1", encoding="latin-1")
    utf8 = _accented_finess(plain.finess, tmp_path / "utf8", encoding="utf-8")
    _load(settings, es, geocoder, plain.rpps, latin)
    reference = {i: o for i, o in _offers(es, settings).items() if o["source"] == "finess"}
    assert reference and all(o["name"].startswith("SANTÉ ") for o in reference.values())

    summary = _load(settings, es, geocoder, plain.rpps, utf8)
    assert summary.status == "success"
    structures = {i: o for i, o in _offers(es, settings).items() if o["source"] == "finess"}
    assert {i: (o["name"], o["structure"]["name"], o["structure"]["sector_label"]) for i, o in structures.items()} == \
           {i: (o["name"], o["structure"]["name"], o["structure"]["sector_label"]) for i, o in reference.items()}
    assert all(o["structure"]["name"].startswith("PÔLE SANTÉ ") for o in structures.values())
    assert any("é" in (o["structure"]["sector_label"] or "") for o in structures.values())
    assert summary.updated == 0        # same content as the Latin-1 load: nothing rewritten


@pytest.mark.timeout(300)
def test_an_undecodable_finess_file_is_a_clear_error(world, files, geocoder, tmp_path):
    settings, es = world
    plain, _ = files
    _load(settings, es, geocoder, plain.rpps, plain.finess)
    before = _offers(es, settings)
    # 0x81 is neither UTF-8 (a lone continuation byte) nor any character of Latin-1/Windows-1252 text.
    bad = _accented_finess(plain.finess, tmp_path / "bad", encoding="latin-1", extra=b"\x81")
    assert b"\x81" in bad.read_bytes()
    with pytest.raises(DataQualityError, match=r"undecodable FINESS file.*neither UTF-8 nor Latin-1"):
        _load(settings, es, geocoder, plain.rpps, bad)
    assert _offers(es, settings) == before


@pytest.mark.timeout(300)
def test_a_truncated_or_corrupted_zip_is_reported_as_damaged(world, files, geocoder, tmp_path):
    settings, es = world
    _, zipped = files
    _load(settings, es, geocoder, zipped.rpps)
    before = _offers(es, settings)
    data = zipped.rpps.read_bytes()

    truncated = tmp_path / "cut" / zipped.rpps.name
    truncated.parent.mkdir()
    truncated.write_bytes(data[: len(data) * 6 // 10])            # an interrupted download
    with pytest.raises(DataQualityError, match=r"damaged zip archive \(archive zip endommagée") as raised:
        _load(settings, es, geocoder, truncated)
    assert "not UTF-8" not in str(raised.value)

    # Bytes flipped inside the compressed member (the central directory intact): fails while reading.
    with zipfile.ZipFile(zipped.rpps) as archive:
        info = archive.infolist()[0]
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    middle = start + info.compress_size // 2
    corrupted = tmp_path / "flip" / zipped.rpps.name
    corrupted.parent.mkdir()
    corrupted.write_bytes(data[:middle] + bytes(b ^ 0x5A for b in data[middle:middle + 64]) + data[middle + 64:])
    with pytest.raises(DataQualityError, match=r"damaged zip archive"):
        _load(settings, es, geocoder, corrupted)
    assert _offers(es, settings) == before
