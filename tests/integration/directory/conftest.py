"""Directory integration tests run under their own sub-prefix (``<session prefix>-dir``): a full load
deletes offers that are not in its files, which must never touch the offers other tests created."""

from __future__ import annotations

import pytest

from indexer.lifecycle import drop_prefix, setup_indices


@pytest.fixture(scope="module")
def dir_settings(settings, test_prefix):
    return settings.model_copy(update={"index_prefix": f"{test_prefix}-dir"})


@pytest.fixture(scope="module")
def dir_indices(es, dir_settings):
    drop_prefix(es, prefix=dir_settings.index_prefix)
    setup_indices(es, prefix=dir_settings.index_prefix)
    yield dir_settings.index_prefix
    drop_prefix(es, prefix=dir_settings.index_prefix)


@pytest.fixture(scope="module")
def geocoder(dir_settings):
    from indexer.directory import build_directory_geocoder

    return build_directory_geocoder(dir_settings)
