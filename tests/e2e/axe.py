"""axe-core in the browser tests (issue 17, point 2): every page and viewport a journey visits is checked,
under the page's real Content-Security-Policy. The vendored ``axe.min.js`` (web/package.json, copied by
scripts/vendor_web_assets.sh) is served to the page as a same-origin file through Playwright's router — the app
never serves it and the CSP (``script-src 'self'``, no inline script) is the one users get."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
AXE_PATH = "/__e2e__/axe.min.js"       # no such route in the app: only the test's router answers it


def _route(page) -> None:
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
    if getattr(page, "_axe_routed", None) == origin:
        return
    page.route(f"{origin}{AXE_PATH}", lambda route: route.fulfill(path=str(AXE), content_type="text/javascript"))
    page._axe_routed = origin


def axe_violations(page) -> list[str]:
    """The page's axe violations (WCAG 2.x A/AA and axe's best practices), one line each."""
    _route(page)
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
        page.add_script_tag(url=f"{origin}{AXE_PATH}")
    results = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — '
          + v.nodes.slice(0, 4)
              .map(n => n.target.join(' ') + ' ' + (n.failureSummary || '').replace(/\\s+/g, ' ')).join(' | '));
    }""")
    return results


def assert_accessible(page, where: str = "") -> None:
    """0 violations on the page as it is now (call it after each visible change a journey makes)."""
    violations = axe_violations(page)
    assert violations == [], f"axe on {where or page.url} ({page.viewport_size}):\n" + "\n".join(violations)
