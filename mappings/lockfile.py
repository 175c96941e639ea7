"""``mappings/versions.lock.json``: the fingerprint of each index body at its current version.

A unit test compares the live mapping files with the lock: a mapping edited without bumping its
``version`` fails the test (the change would never reach existing clusters, since ``sas setup`` does not
touch an index that exists). Regenerate after a deliberate bump: ``python -m mappings.lockfile``.
"""

from __future__ import annotations

import json
from pathlib import Path

from mappings.registry import INDICES

LOCK_PATH = Path(__file__).with_name("versions.lock.json")


def current() -> dict[str, dict]:
    """``{name: {"version": N, "fingerprint": "..."}}`` of the mapping files as they are now."""
    return {s.name: {"version": s.version, "fingerprint": s.fingerprint()} for s in INDICES}


def write() -> None:
    """Rewrite the lock from the current mapping files."""
    LOCK_PATH.write_text(json.dumps(current(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    write()
    print(f"wrote {LOCK_PATH}")
