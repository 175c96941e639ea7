"""National directory connectors: RPPS extraction, FINESS stock file, Annuaire Santé FHIR API.

Everything here reads the outside formats and yields normalised records (``records.py``); nothing here
knows about Elasticsearch (the pipeline that indexes them is ``indexer/directory.py``).
"""
