"""The generators write what the directory connectors read: their tests use the directory tests' reference
tables, reused as they are."""

from tests.unit.directory.conftest import communes, gazetteer, reference_dir, specialties  # noqa: F401
