"""Scheduling vendors ("éditeurs") seen through the national SAS FHIR specification.

``config`` reads the vendors registry (``SAS_VENDORS_FILE``), ``queries`` builds the three slot searches
(INT_R01, INT_R04, SOS Médecins), ``client`` fetches them over HTTP(S) with mutual TLS, retries, rate
limits and a circuit breaker, ``mapping`` turns bundles into normalised slot records. Nothing here
imports Elasticsearch.
"""
