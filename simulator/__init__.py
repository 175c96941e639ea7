"""A simulator of scheduling vendors ("éditeurs") speaking the SAS FHIR specification.

Run with ``sas simulate vendors``; used by ``make run``, the integration tests and ``sas bench harvest``.
"""
