"""The platform's INTRN identifier of an account is always a UUID, stable for one subject."""

from __future__ import annotations

import uuid

from sas_core.platform_ids import PLATFORM_NAMESPACE, platform_uuid


def test_a_uuid_subject_is_its_own_platform_id():
    subject = str(uuid.uuid4())
    assert platform_uuid(subject) == subject
    assert platform_uuid(subject.upper()) == subject        # canonical lowercase form


def test_other_subjects_get_a_stable_name_based_uuid():
    first, again, other = platform_uuid("psc-123"), platform_uuid("psc-123"), platform_uuid("psc-124")
    assert first == again != other
    parsed = uuid.UUID(first)
    assert parsed.version == 5 and str(parsed) == first
    assert first == str(uuid.uuid5(PLATFORM_NAMESPACE, "psc-123"))
    # A UUID without hyphens is not the canonical form vendors' regex expect: it is hashed too.
    assert platform_uuid(uuid.UUID(first).hex) != uuid.UUID(first).hex
