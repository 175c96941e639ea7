"""Browser tests: Debian's Chromium driven by Playwright for Python against the real app under uvicorn,
on the workflow test bed (Bordeaux practitioners harvested from two simulated vendors into the real
Elasticsearch). Screenshots go to ``tests/e2e/artifacts/`` (gitignored)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import uvicorn
import yaml
from playwright.sync_api import expect

from bench.common import free_port
from tests.integration.workflow import conftest as workflow_bed
from tests.integration.workflow.conftest import VENDORS, ServerThread

# The workflow test bed's fixtures, reused as they are (package scope: built once for this package): pytest
# finds fixtures by their names in this module, and the fixtures below depend on them by those names;
# ``wf_settings`` is redefined below on the package's own index prefix.
simulator = workflow_bed.simulator
harvested = workflow_bed.harvested
wf_offers = workflow_bed.wf_offers

# Under a loaded machine a booking round trip to the vendor may take a few seconds.
expect.set_options(timeout=15_000)

CHROMIUM = os.environ.get("SAS_E2E_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


@pytest.fixture(scope="package")
def e2e_settings(settings, es):
    """The session's settings on a sub-prefix of its own (``<prefix>-e2e``, inside the guard): the browser
    tests' bookings and reports must not show up in other packages' counts and dashboards."""
    from indexer.lifecycle import drop_prefix, setup_indices

    prefix = f"{settings.index_prefix}-e2e"
    setup_indices(es, prefix=prefix)
    yield settings.model_copy(update={"index_prefix": prefix})
    drop_prefix(es, prefix=prefix)


@pytest.fixture(scope="package")
def wf_settings(e2e_settings, simulator, tmp_path_factory):
    """The workflow test bed's vendors (``medilib`` redirect, ``agendax`` appointment) on the e2e prefix."""
    vendors_path = tmp_path_factory.mktemp("e2e") / "vendors.yaml"
    base = f"http://127.0.0.1:{simulator.port}"
    vendors_path.write_text(yaml.safe_dump({"defaults": {"timeout_s": 5, "max_attempts": 1, "rate_limit_per_s": 200},
                                       "vendors": [{"name": v, "base_url": f"{base}/{v}/fhir", "use_cases": ["ps"]}
                                                   for v in VENDORS]}))
    return e2e_settings.model_copy(update={"vendors_file": vendors_path, "booking_appointment_vendors": ["agendax"]})


@pytest.fixture(scope="package")
def base_url(wf_settings, es, harvested):
    from search_api.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(wf_settings, es=es), host="127.0.0.1", port=port, log_level="warning")
    with ServerThread(config):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="package")
def browser(base_url):
    """Chromium through Playwright's sync API, whose event loop then runs in this thread: the test bed
    (whose harvest runs its own ``asyncio.run``) is built first, whichever test of the package comes first."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def shoot():
    """``shoot(page, name)``: a full-page screenshot under tests/e2e/artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def new_page(browser):
    """``new_page(width, height)``: a fresh context (own cookies) and page; closed after the test."""
    contexts = []

    def make(width: int = 1366, height: int = 900):
        context = browser.new_context(viewport={"width": width, "height": height}, locale="fr-FR",
                                      timezone_id="Europe/Paris")
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def login(page, base_url: str, *, role: str, territories: str = "SAS-33", name: str = "", national_id: str = "",
          next_path: str = "/app/recherche") -> None:
    """Sign in through the dev login page, as a user would."""
    page.goto(f"{base_url}{next_path}")
    assert "/login" in page.url, page.url   # no session: sent to the login page
    from tests.e2e.axe import assert_accessible

    assert_accessible(page, "login")        # issue 17, point 2: every page a journey visits
    page.get_by_label("Rôle").select_option(role)
    page.get_by_label("Territoire(s) SAS").fill(territories)
    page.get_by_label("Nom affiché").fill(name)
    if national_id:
        page.get_by_label("Identifiant national (effecteur : 8 + RPPS)").fill(national_id)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{base_url}{next_path}*")
