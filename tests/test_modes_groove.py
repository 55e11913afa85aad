"""The four upload modes on real drummers: the Groove MIDI Dataset's validation beats (4/4) from
``../shared/groove``, each cut to its first 8 bars and run through the modes in the style of its
genre, the way a user's upload goes (:func:`drumgen.uploads.run_mode`, no audio).

What is measured (printed as JSON with ``pytest -s``) and held to:

- humanize keeps every note (pitch and grid step); quantized first, the feel it gives has a per-voice
  timing spread (ms, the std of each hit's offset from its 16th) of the same order as the drummer's;
- continue follows its prompt: the published edit distance (``drumgen.tools.metrics``) of each new
  bar to the prompt's bar at the same place in the phrase, beside the drummer's own next 8 bars and a
  groove generated without the prompt;
- re-roll keeps kick and snare exactly (onset and velocity) and changes the other voices;
- drumify (the groove's own rhythm as the part): kick precision (kicks on a part onset) >= 0.7 and
  recall (part onsets with a kick) >= 0.5;
- the same file, settings and seed give the same bytes.

Skipped with the reason when the dataset or the committed checkpoint is absent.
"""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import COMMITTED_CHECKPOINT, REPO

from drumgen.midi_io import MidiImportError, pattern_to_midi_bytes, read_midi, read_part
from drumgen.modes import snap, snap_to_grid
from drumgen.pattern import PPQ, Pattern
from drumgen.request import GenerateRequest
from drumgen.voices import PITCH_TO_VOICE, VOICE_PITCH, canonical_pitch

pytestmark = [pytest.mark.dataset, pytest.mark.slow]

GROOVE = REPO.parent / "shared" / "groove"
PROMPT_BARS = 8
GENRE_STYLE = {"gospel": "soul"}  # a dataset genre without a style of its own
KICK, SNARE = VOICE_PITCH["kick"], VOICE_PITCH["snare"]
SEED = 11


def validation_beats() -> list[tuple[str, str, Path]]:
    """``(id, style, file)`` of every 4/4 validation beat."""
    if not (GROOVE / "info.csv").is_file():
        pytest.skip(f"the Groove MIDI Dataset is not at {GROOVE} (info.csv missing)")
    if not COMMITTED_CHECKPOINT.is_file():
        pytest.skip(f"no committed checkpoint at {COMMITTED_CHECKPOINT}")
    with (GROOVE / "info.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "validation" and r["beat_type"] == "beat"
                and r["time_signature"] == "4-4"]
    out = []
    for r in rows:
        genre = r["style"].split("/")[0]
        out.append((r["id"], GENRE_STYLE.get(genre, genre), GROOVE / r["midi_filename"]))
    return out


def offsets_ms(pattern: Pattern) -> dict[str, list[float]]:
    """Each voice's hits' offsets from their grid step, in ms."""
    ms_per_tick = 60_000 / pattern.tempo / PPQ
    out: dict[str, list[float]] = {}
    for n in pattern.notes:
        voice = PITCH_TO_VOICE.get(n.pitch)
        if voice:
            out.setdefault(voice, []).append((n.onset - snap(n.onset)) * ms_per_tick)
    return out


def spreads(pattern: Pattern) -> dict[str, float]:
    return {v: float(np.std(o)) for v, o in offsets_ms(pattern).items() if len(o) >= 8}


def places(pattern: Pattern) -> list[tuple[int, int]]:
    return sorted((n.onset, n.pitch) for n in pattern.notes)


def same_step_share(before: Pattern, after: Pattern) -> float:
    """The share of hits still nearest the 16th they were nearest before (hits matched in order per pitch)."""
    def steps(p: Pattern) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for n in sorted(p.notes):
            out.setdefault(n.pitch, []).append(snap(n.onset))
        return out

    a, b = steps(before), steps(after)
    same = sum(x == y for pitch in a for x, y in zip(a[pitch], b.get(pitch, []), strict=False))
    return same / max(1, len(before.notes))


def edit_to(a: Pattern, b: Pattern, bars: int) -> float:
    """Mean published edit distance of a's bar i to b's bar i, i < bars."""
    from drumgen.tools.metrics import bar_texts, edit_grids, levenshtein

    ta, tb = bar_texts(edit_grids(a))[:bars], bar_texts(edit_grids(b))[:bars]
    return float(levenshtein(ta, tb).mean())


def of(pattern: Pattern, locked: bool) -> list[tuple[int, int, int]]:
    """The ``(onset, pitch, velocity)`` hits of kick and snare (``locked``), or of every other voice."""
    return sorted((n.onset, n.pitch, n.velocity) for n in pattern.notes
                  if (canonical_pitch(n.pitch) in (KICK, SNARE)) == locked)


def cut(pattern: Pattern, start: int, bars: int) -> Pattern:
    lo, hi = start * pattern.ticks_per_bar, (start + bars) * pattern.ticks_per_bar
    return Pattern(notes=[replace(n, onset=n.onset - lo) for n in pattern.notes if lo <= n.onset < hi],
                   tempo=pattern.tempo, bars=bars)


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    """Every mode on every validation beat; the measures per groove and pooled."""
    import torch

    from drumgen.engine import Engine
    from drumgen.uploads import ModeOptions, run_mode

    beats = validation_beats()
    torch.set_num_threads(1)
    engine = Engine.load()
    per: dict[str, list[Any]] = {k: [] for k in ("kept", "same_pitches", "before_feel", "before_feel_quantized",
                                                 "same_step", "same_step_quantized",
                                                 "spread_in", "spread_out", "edit_new",
                                                 "edit_real", "edit_free", "locked_same", "others_changed",
                                                 "precision", "recall", "same_bytes")}
    for i, (_, style, path) in enumerate(beats):
        try:
            whole = read_midi(path).pattern
        except MidiImportError as exc:
            pytest.fail(f"{path.name}: {exc}")
        prompt = cut(whole, 0, min(PROMPT_BARS, whole.bars))
        data = pattern_to_midi_bytes(prompt)
        base = GenerateRequest(style=style, seed=SEED, audio=False, bars=PROMPT_BARS)

        # humanize: the played groove as it is, and quantized first
        plain = run_mode(engine, "humanize", data, base)[0]
        out = plain.pattern
        per["kept"].append(len(out.notes) / len(prompt.notes))
        per["same_pitches"].append(sorted(n.pitch for n in out.notes) == sorted(n.pitch for n in prompt.notes))
        per["before_feel"].append(places(plain.quantized) == places(prompt))
        per["same_step"].append(same_step_share(prompt, out))
        snapped = run_mode(engine, "humanize", data, base, ModeOptions(quantize=True))[0]
        quantized = snapped.pattern
        per["before_feel_quantized"].append(places(snapped.quantized) == places(snap_to_grid(prompt)))
        per["same_step_quantized"].append(same_step_share(snapped.quantized, quantized))
        per["spread_in"].append(spreads(prompt))
        per["spread_out"].append(spreads(quantized))

        # continue: 8 new bars after the 8-bar prompt
        if whole.bars >= 2 * PROMPT_BARS and prompt.bars == PROMPT_BARS:
            new = run_mode(engine, "continue", data, base, ModeOptions(only_new=True))[0].pattern
            free = engine.generate(replace(base, tempo=prompt.tempo))[0].pattern
            per["edit_new"].append(edit_to(new, prompt, PROMPT_BARS))
            per["edit_real"].append(edit_to(cut(whole, PROMPT_BARS, PROMPT_BARS), prompt, PROMPT_BARS))
            per["edit_free"].append(edit_to(free, prompt, PROMPT_BARS))

        # re-roll around kick and snare
        rolled = run_mode(engine, "reroll", data, base, ModeOptions(keep="kick,snare"))[0]
        per["locked_same"].append(of(rolled.pattern, True) == of(prompt, True))
        before, after = {(snap(o), p) for o, p, _ in of(prompt, False)}, {(snap(o), p) for o, p, _ in
                                                                        of(rolled.pattern, False)}
        per["others_changed"].append(1 - len(before & after) / max(1, len(before | after)))

        # drumify: the groove's own rhythm is the part
        part = read_part(data)
        grooves = run_mode(engine, "drumify", data, base)
        kicks = {snap(n.onset) for n in grooves[0].quantized.notes if canonical_pitch(n.pitch) == KICK}
        onsets = {snap(o) % prompt.length_ticks for o in part.onsets}  # the loop wraps
        per["precision"].append(len(kicks & onsets) / max(1, len(kicks)))
        per["recall"].append(len(kicks & onsets) / max(1, len(onsets)))

        if i < 4:  # the same bytes again, every mode
            again = [run_mode(engine, m, data, base, ModeOptions(keep="kick,snare"))[0].midi
                     for m in ("humanize", "continue", "reroll", "drumify")]
            first = [out_groove.midi for out_groove in (run_mode(engine, "humanize", data, base)[0],
                                                        run_mode(engine, "continue", data, base)[0], rolled,
                                                        grooves[0])]
            per["same_bytes"].append(again == first)

    voices = sorted({v for d in per["spread_in"] for v in d})
    pooled = {v: {"drummer": round(statistics.median(d[v] for d in per["spread_in"] if v in d), 1),
                  "humanized": round(statistics.median(d[v] for d in per["spread_out"] if v in d), 1)}
              for v in voices if sum(v in d for d in per["spread_out"]) >= 5}
    report = {
        "grooves": len(beats),
        "humanize_notes_kept": round(statistics.mean(per["kept"]), 4),
        "humanize_same_pitches": sum(per["same_pitches"]),
        "humanize_same_places_before_feel": sum(per["before_feel"]),
        "humanize_quantized_on_the_grid_before_feel": sum(per["before_feel_quantized"]),
        "humanize_hits_on_their_16th": round(statistics.mean(per["same_step"]), 4),
        "humanize_quantized_hits_on_their_16th": round(statistics.mean(per["same_step_quantized"]), 4),
        "timing_spread_ms_median_per_voice": pooled,
        "continue_grooves": len(per["edit_new"]),
        "continue_edit_distance_to_prompt": {
            "continuation": round(statistics.mean(per["edit_new"]), 2),
            "drummer_next_8_bars": round(statistics.mean(per["edit_real"]), 2),
            "generated_without_prompt": round(statistics.mean(per["edit_free"]), 2)},
        "reroll_locked_identical": sum(per["locked_same"]),
        "reroll_other_hits_changed_share": round(statistics.mean(per["others_changed"]), 3),
        "drumify_kick_precision": round(statistics.mean(per["precision"]), 3),
        "drumify_kick_recall": round(statistics.mean(per["recall"]), 3),
        "drumify_min_precision": round(min(per["precision"]), 3),
        "drumify_min_recall": round(min(per["recall"]), 3),
        "same_bytes": f"{sum(per['same_bytes'])}/{len(per['same_bytes'])}",
    }
    print(json.dumps(report, indent=2))
    return {"per": per, "report": report}


def test_humanize_keeps_every_note_of_a_real_groove(figures: dict[str, Any]) -> None:
    """Every note, of its pitch, at its place before the feel (the drummer's own timing, or with
    quantize its 16th); the feel (swing included) then moves few hits past the half-way point to
    another 16th."""
    per = figures["per"]
    assert all(k == 1.0 for k in per["kept"]) and all(per["same_pitches"])
    assert all(per["before_feel"]) and all(per["before_feel_quantized"])  # the feel starts from them
    assert statistics.mean(per["same_step_quantized"]) >= 0.95 and statistics.mean(per["same_step"]) >= 0.9


def test_humanized_timing_spread_is_of_a_drummers_order(figures: dict[str, Any]) -> None:
    for voice, spread in figures["report"]["timing_spread_ms_median_per_voice"].items():
        assert 2 <= spread["humanized"] <= 3 * max(spread["drummer"], 5), (voice, spread)


def test_a_continuation_follows_its_prompt(figures: dict[str, Any]) -> None:
    edit = figures["report"]["continue_edit_distance_to_prompt"]
    assert figures["report"]["continue_grooves"] >= 10
    assert edit["continuation"] < edit["generated_without_prompt"], edit


def test_reroll_keeps_locked_voices_and_changes_the_rest(figures: dict[str, Any]) -> None:
    per = figures["per"]
    assert all(per["locked_same"])
    assert statistics.mean(per["others_changed"]) >= 0.3


def test_drumify_kicks_follow_the_parts_onsets(figures: dict[str, Any]) -> None:
    per = figures["per"]
    assert min(per["precision"]) >= 0.7 and min(per["recall"]) >= 0.5


def test_the_same_file_settings_and_seed_give_the_same_bytes(figures: dict[str, Any]) -> None:
    assert figures["per"]["same_bytes"] and all(figures["per"]["same_bytes"])
