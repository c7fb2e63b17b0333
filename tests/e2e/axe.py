"""axe-core (from npm: ``make browser`` installs it into ``node_modules``) run on a
page that Playwright opened."""

from pathlib import Path

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


def serious(page) -> list[str]:  # type: ignore[no-untyped-def]
    """axe-core's serious and critical violations on the page, as lines to read."""
    assert AXE.exists(), "axe-core is missing: make browser installs it"
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['impact']}: {v['id']}: {v['help']} ({len(v['nodes'])}: "
        f"{v['nodes'][0]['target']})"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]
