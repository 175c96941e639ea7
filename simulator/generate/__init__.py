"""Invented data in the real national formats, for demos, tests and benchmarks: the directory files
(``directory.py``: RPPS, FINESS, SAS participation) and their BAN-format address files (``addresses.py``)."""
