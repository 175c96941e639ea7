"""The benchmarks behind ``sas bench …`` and their shared helpers (``common.py``); results go to ``bench/results/``.

Nothing of the runtime (``connectors``, ``indexer``, ``search_api``, ``sas_core``, ``mappings``) imports this
package: a benchmark may use anything (the simulator, the generators), the platform never uses a benchmark.
"""
