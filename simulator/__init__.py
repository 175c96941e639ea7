"""A simulator of scheduling vendors ("éditeurs") speaking the SAS FHIR specification, and the demo's invented
data (``generate/``: directory and BAN address files in the national formats; ``demo_vendors.py``).

Run with ``sas simulate vendors``; used by ``make run``, the tests and the benchmarks (``bench/``), never by
the runtime packages.
"""
