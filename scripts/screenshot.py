"""Take the README's screenshot: the app on loopback (committed checkpoint, real audio), two J Dilla
variations from seed 7 on screen, at a desktop width, in headless Chromium (playwright).

    .venv/bin/python scripts/screenshot.py [docs/screenshot.png]
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("DRUMGEN_CHROMIUM", "/usr/bin/chromium"))
TIMEOUT_MS = 120_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(out: Path) -> None:
    sys.path.insert(0, str(REPO))
    from playwright.sync_api import expect, sync_playwright

    import app
    from drumgen.web.handlers import AppHandlers
    from drumgen.web.serving import EngineSource, TempArea

    source = EngineSource()
    error = source.warm_up("j_dilla")
    blocks = app.build_app(AppHandlers(source, TempArea(max_age_s=120)), error)
    _, url, _ = app.launch(blocks, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                           quiet=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            expect(page.get_by_role("button", name="Generate", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
            count = page.get_by_label("number input for Variations")
            count.fill("2")
            count.press("Enter")
            page.get_by_text("Advanced", exact=True).click()
            page.get_by_label("Random seed").uncheck()
            seed = page.get_by_label("Seed", exact=True)
            seed.fill("7")
            seed.press("Enter")
            page.get_by_text("Advanced", exact=True).click()
            page.get_by_role("button", name="Generate", exact=True).click()
            expect(page.locator('#groove-midi-2 a[download$=".mid"]')).to_have_count(1, timeout=TIMEOUT_MS)
            page.locator("#locks-1").get_by_label("Kick").check()
            page.locator("#locks-1").get_by_label("Snare").check()
            page.wait_for_timeout(1500)  # the waveforms draw
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        blocks.close()
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshot.png")
