"""The dev login form as a browser posts it: GET /login (pre-session CSRF cookie + hidden field), then POST."""

from __future__ import annotations

import re

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def login_csrf(client) -> str:
    """The CSRF token of the login form (its cookie is now in ``client``)."""
    page = client.get("/login")
    assert page.status_code == 200, page.text[:300]
    found = _CSRF.search(page.text)
    assert found, "no CSRF field in the login form"
    return found.group(1)


def post_login(client, data: dict, **kwargs):
    """POST /login with ``data`` and the form's CSRF token, like the login page's form."""
    return client.post("/login", data={**data, "csrf": login_csrf(client)}, **kwargs)
