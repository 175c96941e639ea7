"""``sas bench search``: search latency at national scale, three paths on the same fixed query mix.

The mix (``mix.py``) is sent three ways, each by ``clients`` concurrent clients (``load.py``):

* **api** — ``GET /v1/search`` over HTTP against the running API (``sas serve``), with OSNP tokens;
* **raw_es** — the very Elasticsearch requests the API makes for each query (``capture.py``: captured by
  running the API's own search service once per query through a recording client), replayed over HTTP
  straight to Elasticsearch, in the same order: the difference with ``api`` is the API's own cost;
* **fanout** — the strategy of the current national platform, live at search time (``fanout.py``): find the
  participating practitioners near the point in the directory, then ask each of their vendors (the
  simulator) for free slots, 25 practitioners per request, all requests at once, 7 s vendor timeout.

The simulator answers at a documented latency distribution for vendors reached over the internet
(log-normal, median 250 ms, p95 1.5 s by default, hence p99 ≈ 3.2 s), injected by a small ASGI layer in
front of the real simulator application (``latency.py``, run as ``python -m bench.search simulator`` by
``processes.py``). ``run.py`` runs the whole benchmark, ``report.py`` writes its result.

This is a benchmark, never a unit test: it needs a loaded national dataset (see ``run.prepare_dataset``).
"""
