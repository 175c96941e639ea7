"""The one bulk writer against the real Elasticsearch: every item accounted for, and each caller's policy
(create conflicts, deletions of missing documents, failed requests) as the harvest and the loads need."""

from __future__ import annotations

import socket
import uuid

import orjson
import pytest
from elastic_transport import TransportError
from elasticsearch import Elasticsearch

from indexer.bulk import BulkWriter, reason_as_index_error


@pytest.fixture()
def index(es, settings):
    name = f"{settings.index_prefix}-bulkwriter-{uuid.uuid4().hex[:8]}"
    es.indices.create(index=name, mappings={"dynamic": "strict", "properties": {"n": {"type": "integer"}}})
    yield name
    es.indices.delete(index=name)


def test_results_by_operation_and_chunks_on_threads(es, index):
    with BulkWriter(es, index=index, chunk=7, threads=3) as writer:
        for n in range(50):
            writer.create_raw(f"d{n}", orjson.dumps({"n": n}))
    assert writer.written == 50 and writer.results == {"create:created": 50} and not writer.errors
    with BulkWriter(es, index=index, chunk=10, threads=2) as writer:
        writer.update("d1", {"n": 100})
        writer.update_raw("d2", orjson.dumps({"doc": {"n": 2}}))   # same content: noop
        writer.index_raw("d3", orjson.dumps({"n": 300}))
        writer.delete("d4")
        writer.delete("absent")                                       # already gone: fine by default
    assert writer.results == {"update:updated": 1, "update:noop": 1, "index:updated": 1, "delete:deleted": 1,
                              "delete:not_found": 1}
    assert writer.result_count("updated") == 2
    es.indices.refresh(index=index)
    assert es.get(index=index, id="d1")["_source"] == {"n": 100}
    assert es.count(index=index)["count"] == 49


def test_create_conflicts_become_updates_or_are_ignored(es, index):
    es.index(index=index, id="taken", document={"n": 1}, refresh=True)
    with BulkWriter(es, index=index, chunk=100) as writer:          # the harvester's slots
        writer.create_raw("taken", orjson.dumps({"n": 2}))
    assert writer.results == {"update:updated": 1} and not writer.errors
    assert es.get(index=index, id="taken")["_source"] == {"n": 2}
    with BulkWriter(es, index=index, chunk=100, create_conflict="ignore") as writer:   # vendor-only places
        writer.create("taken", {"n": 3})
    assert writer.results == {"create:exists": 1} and not writer.errors
    assert es.get(index=index, id="taken")["_source"] == {"n": 2}


def test_refused_documents_are_counted_by_reason_with_their_message(es, index):
    with BulkWriter(es, index=index, chunk=100, missing_delete_ok=False, failure_reason=reason_as_index_error,
                    kind_of_id=lambda doc_id: doc_id[:4]) as writer:
        writer.index_raw("good", orjson.dumps({"n": 1}))
        writer.index_raw("bad1", orjson.dumps({"unknown": 1}))          # strict mapping
        writer.delete("gone")
    assert writer.results == {"index:created": 1}
    assert writer.kinds == {"good": 1}
    assert writer.errors.as_dict() == {"index_error:error": 1, "index_error:strict_dynamic_mapping_exception": 1}
    assert any(message.startswith("index bad1: strict_dynamic_mapping_exception") for message in writer.error_messages)


def test_failed_requests_are_counted_or_raised():
    # A node that is not there (nothing listens on the port): every request fails in the transport.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    nowhere = Elasticsearch(f"http://127.0.0.1:{port}", max_retries=0, request_timeout=2)
    with BulkWriter(nowhere, index="sas-test-nowhere", chunk=2) as writer:   # the harvester: the run goes on
        for n in range(3):
            writer.index_raw(f"d{n}", b'{"n":1}')
    assert writer.errors.as_dict() == {"bulk_request_failed": 3} and len(writer.error_messages) == 2
    with pytest.raises(TransportError):                                     # the loads: the load fails
        with BulkWriter(nowhere, index="sas-test-nowhere", chunk=2, request_failure="raise") as writer:
            for n in range(3):
                writer.index_raw(f"d{n}", b'{"n":1}')
