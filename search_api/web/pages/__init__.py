"""HTML pages of the web interface (French), rendered on the server with Jinja2, one module per journey.

Pages call the same services as the JSON API (``search_api.services``: search, workflow, agenda,
dashboards) and resolve their parameters with the same functions (``search_api.params``): the rules
(roles, scopes, validation) live in one place. htmx requests (``HX-Request``) get the page's fragment only,
so results update without a reload.
"""

from __future__ import annotations

from search_api.web.pages import accounts, actions, cpts, dashboards, login, practitioner, search

#: One router per journey, included by ``search_api.web.install``.
ROUTERS = (login.router, search.router, cpts.router, actions.router, dashboards.router, accounts.router,
           practitioner.router)
