"""Logout in a real Chromium (issue 15, point 10): the page's logout form (with its CSRF token) closes the
session server-side; the session cookie copied before logout, put into another browser, opens nothing."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login

pytestmark = pytest.mark.integration


def test_logout_makes_a_copied_cookie_worthless(base_url, new_page, browser):
    page = new_page()
    login(page, base_url, role="regulator", name="Pauline Ricart")
    copied = [c for c in page.context.cookies() if c["name"] == "sas_session"]
    assert copied and copied[0]["httpOnly"]

    thief = browser.new_context()
    try:
        thief.add_cookies(copied)
        other = thief.new_page()
        other.goto(f"{base_url}/app/recherche")
        assert "/app/recherche" in other.url                        # the copy works while the session lives

        page.get_by_role("button", name="Se déconnecter").click()
        page.wait_for_url(f"{base_url}/login*")
        expect(page.get_by_role("heading", name="Connexion")).to_be_visible()

        other.goto(f"{base_url}/app/recherche")
        assert "/login?next=" in other.url, other.url             # revoked on the server, not just in one browser
    finally:
        thief.close()
