"""The app in a real headless Chromium (playwright): choose a style, press Generate, get the looping
preview player, the MIDI download, the drum grid and the feel readout, and the full WAV on request; a
producer example runs in one click; overriding the style's swing makes the groove at the asked swing;
a dropped MIDI file is humanized and re-rolled around locked voices; four variations each play and
download as one zip; on a phone's width the grid wraps and its cells stay legible.

Saves screenshots under the test's tmp folder (nothing is written to the work tree).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app_fixtures import serve
from conftest import use_checkpoint

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("DRUMGEN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
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
            audio_link = page.locator('#groove-audio-1 a[download$=".mp3"]')
            midi_link = page.locator('#groove-midi-1 a[download$=".mid"]')
            expect(audio_link).to_have_count(1, timeout=TIMEOUT_MS)
            expect(midi_link).to_have_count(1, timeout=TIMEOUT_MS)
            assert midi_link.get_attribute("download").startswith("metro_boomin_140bpm_4bars_seed")
            duration = page.locator("#groove-audio-1 #duration")
            expect(duration).to_have_text(re.compile(r"^0:0[67]$"), timeout=TIMEOUT_MS)  # 4 bars: one loop
            expect(page.locator("#variation-1 svg.grid-bar")).to_have_count(4, timeout=TIMEOUT_MS)
            expect(page.locator("#variation-1 .feel-card")).to_have_count(4)
            expect(page.locator(".headline")).to_contain_text("Metro Boomin")

            # the files behind the links are a small MP3 preview and a standard MIDI file
            preview = page.request.get(audio_link.get_attribute("href")).body()
            assert preview[:3] == b"ID3" or preview[:2] in (b"\xff\xfb", b"\xff\xf3")
            assert len(preview) < 250_000
            assert page.request.get(midi_link.get_attribute("href")).body()[:4] == b"MThd"

            # the full-quality WAV only when asked for
            wav_link = page.locator('#groove-wav-1 a[download$=".wav"]')
            expect(wav_link).to_have_count(0)
            page.locator("#wav-button-1").click()
            expect(wav_link).to_have_count(1, timeout=TIMEOUT_MS)
            wav = page.request.get(wav_link.get_attribute("href")).body()
            assert wav[:4] == b"RIFF" and len(wav) > 10 * len(preview)

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


@contextlib.contextmanager
def open_page(url: str, width: int = 1400, height: int = 1000, **context: Any) -> Iterator[Any]:
    """A fresh page on the app at ``url`` (Generate visible), failing the test on any page error."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": width, "height": height}, **context).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            expect(page.get_by_role("button", name="Generate", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
            yield page
            assert not errors, errors
        finally:
            browser.close()


def notes_of(page: Any, link: Any) -> list[tuple[int, int, int]]:
    """The ``(onset, pitch, velocity)`` hits of the .mid behind a download link."""
    from drumgen.midi_io import midi_to_pattern

    return sorted((n.onset, n.pitch, n.velocity) for n in
                  midi_to_pattern(page.request.get(link.get_attribute("href")).body()).notes)


def test_drop_a_file_humanize_it_and_reroll_around_locked_voices(app_url: str, tmp_path: Path) -> None:
    """Drop a programmed funk groove, humanize it in J Dilla's feel; then lock kick and snare under the
    grid and re-roll: the locked hits stay exactly (time and velocity), the others change."""
    from playwright.sync_api import expect
    from upload_inputs import funk_groove, write_groove_file

    source = write_groove_file(tmp_path / "my_funk.mid", funk_groove(4))
    with open_page(app_url) as page:
        page.locator("#midi-upload input[type=file]").set_input_files(str(source))
        expect(page.locator("#midi-upload")).to_contain_text("my_funk.mid", timeout=TIMEOUT_MS)
        page.get_by_role("button", name="Use my MIDI").click()
        midi_link = page.locator('#groove-midi-1 a[download$=".mid"]')
        expect(midi_link).to_have_attribute("download", re.compile(r"^humanize_j_dilla_96bpm_4bars_seed\d+\.mid$"),
                                            timeout=TIMEOUT_MS)
        expect(page.locator("#variation-1 svg.grid-bar")).to_have_count(4)
        humanized = notes_of(page, midi_link)
        assert sorted(p for _, p, _ in humanized) == sorted(n.pitch for n in funk_groove(4).notes)  # every note kept

        locks = page.locator("#locks-1")
        locks.get_by_label("Kick").check()
        locks.get_by_label("Snare").check()
        before = midi_link.get_attribute("href")
        page.locator("#reroll-1").click()
        expect(midi_link).not_to_have_attribute("href", before, timeout=TIMEOUT_MS)
        rerolled = notes_of(page, midi_link)
        kick_snare = {36, 38}
        assert [h for h in rerolled if h[1] in kick_snare] == [h for h in humanized if h[1] in kick_snare]
        assert [h for h in rerolled if h[1] not in kick_snare] != [h for h in humanized if h[1] not in kick_snare]
        expect(page.locator(".toast-body")).to_have_count(0)  # no error shown
        page.screenshot(path=str(tmp_path / "rerolled.png"), full_page=True)


def test_four_variations_each_play_and_download_as_one_zip(app_url: str, tmp_path: Path) -> None:
    """Variations = 4: four cards, each with its own player, grid, feel and .mid; one plays (and keeps
    playing past its end: the preview loops); "all variations" downloads as one zip of their files."""
    from playwright.sync_api import expect

    with open_page(app_url) as page:
        count = page.get_by_label("number input for Variations")
        count.fill("4")
        count.press("Enter")
        page.get_by_role("button", name="Generate", exact=True).click()
        for n in range(1, 5):
            expect(page.locator(f'#groove-midi-{n} a[download$=".mid"]')).to_have_count(1, timeout=TIMEOUT_MS)
            expect(page.locator(f"#variation-{n} svg.grid-bar")).to_have_count(4)
            expect(page.locator(f"#variation-{n} .feel-card")).to_have_count(4)
            expect(page.locator(f"#variation-{n} .variation-title")).to_contain_text(f"Variation {n}")
        names = [page.locator(f'#groove-midi-{n} a[download$=".mid"]').get_attribute("download") for n in range(1, 5)]
        seeds = [int(re.search(r"seed(\d+)\.mid$", name).group(1)) for name in names]
        assert seeds == list(range(seeds[0], seeds[0] + 4))

        player = page.locator("#groove-audio-3")
        duration = player.locator("#duration").inner_text()
        player.locator("button.play-pause-button").click()
        expect(player.locator("button.play-pause-button")).to_have_attribute("aria-label", "Pause",
                                                                            timeout=TIMEOUT_MS)
        expect(player.locator("#time")).not_to_have_text("0:00", timeout=TIMEOUT_MS)
        loop_s = int(duration.split(":")[0]) * 60 + int(duration.split(":")[1])
        page.wait_for_timeout(1000 * (loop_s + 2))  # past the end of the preview
        assert player.locator("button.play-pause-button").get_attribute("aria-label") == "Pause"  # still playing

        zip_link = page.locator('#groove-zip a[download$=".zip"]')
        expect(zip_link).to_have_count(1)
        archive = zipfile.ZipFile(io.BytesIO(page.request.get(zip_link.get_attribute("href")).body()))
        assert sorted(n for n in archive.namelist() if n.endswith(".mid")) == sorted(names)
        assert len([n for n in archive.namelist() if n.endswith(".mp3")]) == 4
        for n, name in enumerate(names, start=1):
            link = page.locator(f'#groove-midi-{n} a[download$=".mid"]')
            assert archive.read(name) == page.request.get(link.get_attribute("href")).body()


def test_on_a_phone_the_grid_wraps_and_its_cells_stay_legible(app_url: str, tmp_path: Path) -> None:
    """At 390 px (an iPhone's width): an 8-bar groove's grid wraps to one bar a line with 16th cells at
    least 8 px wide, the page does not scroll sideways, and the variation players stack."""
    from playwright.sync_api import expect

    with open_page(app_url, width=390, height=844, device_scale_factor=3, is_mobile=True, has_touch=True) as page:
        # a phone widens its layout for good once anything overflows, so watch the width on every frame
        page.evaluate("""() => { window.widestPage = 0; const watch = () => { window.widestPage = Math.max(
            window.widestPage, document.documentElement.scrollWidth); requestAnimationFrame(watch); }; watch(); }""")
        bars = page.get_by_label("number input for Bars")
        bars.fill("8")
        bars.press("Enter")
        count = page.get_by_label("number input for Variations")
        count.fill("2")
        count.press("Enter")
        page.get_by_role("button", name="Generate", exact=True).click()
        expect(page.locator('#groove-midi-2 a[download$=".mid"]')).to_have_count(1, timeout=TIMEOUT_MS)
        expect(page.locator("#variation-1 svg.grid-bar")).to_have_count(8)
        cells = page.evaluate("""() => [...document.querySelectorAll('#variation-1 svg.grid-bar')].map(svg => {
            const box = svg.getBoundingClientRect();
            return {step: box.width / Number(svg.dataset.steps), top: box.top, left: box.left}; })""")
        assert min(c["step"] for c in cells) >= 8, cells
        assert len({round(c["top"]) for c in cells}) >= 4, cells  # wrapped: one or two bars a line
        page.wait_for_timeout(2000)  # the players draw their waveforms after the cards appear
        assert page.evaluate("window.widestPage") <= 390  # never scrolled sideways, not even for a frame
        players = [page.locator(f"#groove-audio-{n}").bounding_box() for n in (1, 2)]
        assert players[1]["y"] >= players[0]["y"] + players[0]["height"]  # stacked, not side by side
        page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
