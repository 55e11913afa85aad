"""The app in a real headless Chromium (playwright): choose a style, press Generate, get the audio
player, the MIDI download, the drum grid and the feel readout; a producer example runs in one click;
overriding the style's swing makes the groove at the asked swing.

Saves a screenshot of the page under the test's tmp folder (nothing is written to the work tree).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from app_fixtures import serve
from conftest import use_checkpoint

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("DRUMGEN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def app_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a fresh app on a free loopback port (checkpoint chosen as in test_app.py)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set $DRUMGEN_CHROMIUM)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with pytest.MonkeyPatch.context() as mp:
        use_checkpoint(request, mp)
        served = serve()
        try:
            assert served.startup_error is None, served.startup_error
            yield served.url
        finally:
            served.blocks.close()


def test_generate_in_the_browser(app_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(app_url)
            generate = page.get_by_role("button", name="Generate", exact=True)
            expect(generate).to_be_visible(timeout=TIMEOUT_MS)

            # choosing a style shows its description and resets tempo, kit and swing to the preset's
            page.get_by_role("combobox", name="Style").click()
            page.get_by_role("option", name="Metro Boomin", exact=True).click()
            expect(page.get_by_label("number input for Tempo")).to_have_value("140", timeout=TIMEOUT_MS)
            expect(page.get_by_role("combobox", name="Kit")).to_have_value("TR-808")
            expect(page.get_by_label("number input for Swing (%)")).to_have_value("52")
            expect(page.locator(".preset")).to_contain_text("Tight trap drums with rolls")

            generate.click()
            audio_link = page.locator('#groove-audio a[download$=".wav"]')
            midi_link = page.locator('#groove-midi a[download$=".mid"]')
            expect(audio_link).to_have_count(1, timeout=TIMEOUT_MS)
            expect(midi_link).to_have_count(1, timeout=TIMEOUT_MS)
            assert midi_link.get_attribute("download").startswith("metro_boomin_140bpm_4bars_seed")
            duration = page.locator("#groove-audio #duration")
            expect(duration).to_have_text(re.compile(r"^0:0[78]$"), timeout=TIMEOUT_MS)  # 4 bars + 1 s tail
            expect(page.locator("svg.drum-grid")).to_be_visible(timeout=TIMEOUT_MS)
            expect(page.locator(".feel-card")).to_have_count(4)
            expect(page.locator(".headline")).to_contain_text("Metro Boomin")

            # the files behind the links are a WAV and a standard MIDI file
            assert page.request.get(audio_link.get_attribute("href")).body()[:4] == b"RIFF"
            assert page.request.get(midi_link.get_attribute("href")).body()[:4] == b"MThd"

            # "Reuse this seed" keeps the seed shown in the headline
            seed = page.locator(".headline code").inner_text()
            page.get_by_role("button", name="Reuse this seed").click()
            page.get_by_text("Advanced", exact=True).click()
            expect(page.get_by_label("Random seed")).not_to_be_checked(timeout=TIMEOUT_MS)
            expect(page.get_by_label("Seed", exact=True)).to_have_value(seed)

            shot = tmp_path / "screenshot.png"
            page.get_by_text("Advanced", exact=True).click()  # fold it again for the picture
            page.screenshot(path=str(shot), full_page=True)
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

            # one click on a producer example generates its groove
            page.get_by_text("J Dilla · 90 BPM · 4 bars").click()
            expect(page.locator(".headline")).to_contain_text("J Dilla", timeout=TIMEOUT_MS)
            expect(midi_link).to_have_attribute("download", f"j_dilla_90bpm_4bars_seed{seed}.mid",
                                                timeout=TIMEOUT_MS)  # the kept seed, now for J Dilla

            # overriding the style's swing: the slider opens, and the groove is made at the asked swing
            page.get_by_label("Override the style's swing").check()
            swing = page.get_by_label("number input for Swing (%)")
            expect(swing).to_be_editable(timeout=TIMEOUT_MS)
            swing.fill("70")
            swing.press("Enter")
            generate.click()
            expect(page.locator(".feel-hint").first).to_have_text("asked 70 %", timeout=TIMEOUT_MS)
            expect(page.locator(".toast-body")).to_have_count(0)  # no error shown
            assert not errors, errors
        finally:
            browser.close()
