"""Style presets: the shipped TOML files, lookup, validation of malformed files, model paths."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest

from drumgen import styles
from drumgen.constants import MAX_TEMPO, MIN_TEMPO
from drumgen.styles import (
    KIT_PROGRAMS,
    StylePreset,
    StylePresetError,
    UnknownStyleError,
    get_model_path,
    get_style,
    get_style_id,
    get_style_params,
    list_available_styles,
    list_styles,
    load_preset,
    preset_problems,
)

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "styles"
PRODUCERS = ("j_dilla", "metro_boomin", "questlove")
GENRES = ("afrobeat", "afrocuban", "funk", "hiphop", "jazz", "latin", "neworleans", "pop", "punk", "reggae", "rock",
          "soul")  # the dataset genres with enough grooves for a preset

# The original design's producer values.
PRODUCER_VALUES = {
    "j_dilla": dict(name="J Dilla", description="Signature swing and soulful groove", swing=62,
                    micro_timing_ms=20, ghost_note_prob=0.4, velocity_variation=0.15, tempo=(85, 95)),
    "metro_boomin": dict(name="Metro Boomin", description="Tight trap drums with rolls", swing=52,
                         micro_timing_ms=5, ghost_note_prob=0.1, velocity_variation=0.08, tempo=(130, 150)),
    "questlove": dict(name="Questlove", description="Dynamic funk drumming with ghost notes", swing=58,
                      micro_timing_ms=12, ghost_note_prob=0.5, velocity_variation=0.20, tempo=(90, 110)),
}

VALID_TOML = """\
name = "Test Style"
description = "A test"
kind = "genre"
kit = "standard"
[conditioning]
genre = "rock"
[tempo]
min = 90
max = 120
default = 100
[humanize]
swing = 55
"""


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(styles.STYLES_DIR_ENV, raising=False)
    monkeypatch.delenv(styles.CHECKPOINT_ENV, raising=False)


@pytest.fixture
def styles_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped presets."""
    d = tmp_path / "styles"
    shutil.copytree(SHIPPED_DIR, d)
    return d


# ---------------------------------------------------------------- shipped presets


def test_all_fifteen_presets_load_without_problems() -> None:
    ids = list_available_styles()
    assert len(ids) == 15
    assert set(ids) == set(PRODUCERS) | set(GENRES)
    assert preset_problems() == {}


def test_list_order_is_producers_then_genres_alphabetically() -> None:
    ids = [p.id for p in list_styles()]
    assert ids[:3] == list(PRODUCERS)
    assert ids[3:] == sorted(GENRES)
    assert list_available_styles() == ids


@pytest.mark.parametrize("style_id", list(PRODUCER_VALUES), ids=list(PRODUCER_VALUES))
def test_producer_presets_have_the_briefs_values(style_id: str) -> None:
    want = PRODUCER_VALUES[style_id]
    p = get_style(style_id)
    assert p.kind == "producer"
    assert p.name == want["name"]
    assert p.description == want["description"]
    assert p.humanize.swing == want["swing"]
    assert p.humanize.micro_timing_ms == want["micro_timing_ms"]
    assert p.humanize.ghost_note_prob == want["ghost_note_prob"]
    assert p.humanize.velocity_variation == want["velocity_variation"]
    assert p.tempo_range == want["tempo"]
    assert want["tempo"][0] <= p.default_tempo <= want["tempo"][1]


def test_j_dilla_snare_lands_late() -> None:
    h = get_style("j_dilla").humanize
    assert h.voice_offsets_ms["snare"] > 0 > h.voice_offsets_ms["kick"]
    assert get_style("j_dilla").genre == "hiphop"


def test_metro_boomin_is_half_time_hiphop_on_808_with_hat_rolls() -> None:
    p = get_style("metro_boomin")
    assert (p.genre, p.tempo_scale, p.kit) == ("hiphop", 0.5, "tr808")
    rolls = [a for a in p.humanize.articulations if a.type == "hat_rolls"]
    assert len(rolls) == 1
    assert 0 < rolls[0].probability <= 1
    assert sorted(rolls[0].options["divisions"]) == [6, 8]  # 16th triplets and 32nds


def test_questlove_conditioning_and_kit() -> None:
    p = get_style("questlove")
    assert p.genre in ("funk", "soul")
    assert p.kit in ("room", "standard")


@pytest.mark.parametrize("genre", GENRES, ids=GENRES)
def test_genre_preset_is_sane(genre: str) -> None:
    p = get_style(genre)
    assert p.kind == "genre" and p.genre == genre and p.tempo_scale == 1.0
    lo, hi = p.tempo_range
    assert MIN_TEMPO <= lo <= p.default_tempo <= hi <= MAX_TEMPO
    assert p.kit in KIT_PROGRAMS
    assert p.humanize.swing is None and p.humanize.voice_offsets_ms == {}  # the learned feel plays as learned
    # the learned spread, scaled to its drummers' (calibrate): neither programmed nor sloppy
    assert 8 <= p.humanize.micro_timing_ms <= 24 and 0.05 <= p.humanize.ghost_note_prob <= 0.4
    assert 0 < p.variation <= 1
    assert p.description and p.checkpoint is None and p.version == 1


def test_genre_presets_differ_where_musicians_expect() -> None:
    assert get_style("jazz").kit in ("jazz", "brush") and get_style("metro_boomin").kit == "tr808"
    assert get_style("punk").tempo_range[0] > get_style("rock").tempo_range[0]
    assert get_style("metro_boomin").hats == "trap" and get_style("metro_boomin").tempo_scale == 0.5
    backbeat = {p.id for p in list_styles() if p.backbeat != "none"}
    assert get_style("metro_boomin").backbeat == "every_bar" and get_style("rock").backbeat == "first_bar"
    assert {"rock", "pop", "soul", "funk", "hiphop", "j_dilla", "questlove"} <= backbeat
    assert not backbeat & {"jazz", "latin", "afrocuban", "reggae"}
    assert get_style("punk").kit == "power"
    assert get_style("reggae").tempo_range[1] <= 90


# ---------------------------------------------------------------- lookup


@pytest.mark.parametrize(
    "query", ["j_dilla", "J Dilla", "j dilla", "j-dilla", "J_DILLA", "  J DILLA  ", "j_dilla_v1"],
    ids=["id", "display", "lower-display", "hyphen", "upper-id", "padded", "versioned"],
)
def test_lookup_is_tolerant(query: str) -> None:
    assert get_style(query).id == "j_dilla"


@pytest.mark.parametrize(
    "query,want",
    [("Hip-Hop", "hiphop"), ("hip hop", "hiphop"), ("New Orleans", "neworleans"),
     ("afro-cuban", "afrocuban"), ("METRO BOOMIN", "metro_boomin")],
)
def test_lookup_by_display_name(query: str, want: str) -> None:
    assert get_style(query).id == want


@pytest.mark.parametrize(
    "bad",
    ["timbaland", "", "   ", None, 42, "../styles/j_dilla", "j_dilla.toml", "j_dilla_v2"],
    ids=["unknown", "empty", "blank", "none", "int", "path", "filename", "wrong-version"],
)
def test_unknown_style_error_lists_valid_ids(bad: object) -> None:
    with pytest.raises(UnknownStyleError) as exc:
        get_style(bad)  # type: ignore[arg-type]
    msg = str(exc.value)
    for style_id in ("j_dilla", "metro_boomin", "questlove", "funk", "afrocuban"):
        assert style_id in msg
    assert isinstance(exc.value, ValueError)


def test_get_style_id_is_versioned() -> None:
    assert get_style_id("J Dilla") == "j_dilla_v1"
    assert get_style_id("metro-boomin") == "metro_boomin_v1"


def test_get_style_params() -> None:
    params = get_style_params("Questlove")
    assert params["swing"] == 58 and params["ghost_note_prob"] == 0.5
    assert params["micro_timing_ms"] == 12 and params["velocity_variation"] == 0.20
    assert set(params) == {"swing", "micro_timing_ms", "drift_ms", "ghost_note_prob", "velocity_variation",
                           "voice_offsets_ms", "articulations"}
    rolls = get_style_params("metro_boomin")["articulations"]
    assert rolls == [{"type": "hat_rolls", "probability": 0.3, "divisions": [8, 6]}]
    # a caller editing the result must not change the registry
    params["voice_offsets_ms"]["snare"] = 99.0
    rolls[0]["divisions"].append(3)
    assert get_style("questlove").humanize.voice_offsets_ms["snare"] != 99.0
    assert get_style("metro_boomin").humanize.articulations[0].options["divisions"] == [8, 6]


@pytest.mark.parametrize("style_id", list(PRODUCERS) + list(GENRES))
def test_to_dict_is_json_and_complete(style_id: str) -> None:
    p = get_style(style_id)
    d = json.loads(json.dumps(p.to_dict()))
    assert d["id"] == style_id and d["name"] == p.name and d["kit"] == p.kit
    assert d["tempo_range"] == list(p.tempo_range)
    assert d["humanize"]["swing"] == p.humanize.swing
    assert set(d) == {f for f in StylePreset.__dataclass_fields__}


# ---------------------------------------------------------------- malformed files


BROKEN = {
    "bad_toml": ('name = "Oops\nkind = "genre"\n', "not valid TOML"),
    "missing_name": (VALID_TOML.replace('name = "Test Style"\n', ""), "'name' is missing"),
    "swing_range": (VALID_TOML.replace("swing = 55", "swing = 90"), "'humanize.swing'"),
    "unknown_kit": (VALID_TOML.replace('kit = "standard"', 'kit = "cowbell"'), "'kit'"),
    "unknown_genre": (VALID_TOML.replace('genre = "rock"', 'genre = "trap"'), "'conditioning.genre'"),
    "tempo_order": (VALID_TOML.replace("default = 100", "default = 130"), "'tempo.default'"),
    "tempo_limit": (VALID_TOML.replace("max = 120", "max = 400"), "'tempo.max'"),
    "swing_type": (VALID_TOML.replace("swing = 55", 'swing = "lots"'), "'humanize.swing'"),
    "swing_bool": (VALID_TOML.replace("swing = 55", "swing = true"), "'humanize.swing'"),
    "ghost_prob": (VALID_TOML + "ghost_note_prob = 1.5\n", "'humanize.ghost_note_prob'"),
    "top_p_zero": (VALID_TOML + "[sampling]\ntop_p = 0\n", "'sampling.top_p'"),
    "top_k_neg": (VALID_TOML + "[sampling]\ntop_k = -1\n", "'sampling.top_k'"),
    "temp_neg": (VALID_TOML + "[sampling]\ntemperature = -0.5\n", "'sampling.temperature'"),
    "temp_nan": (VALID_TOML + "[sampling]\ntemperature = nan\n", "'sampling.temperature'"),
    "contrast_own": (VALID_TOML + '[sampling]\ncontrast_genre = "rock"\ncontrast = 1\n', "'sampling.contrast_genre'"),
    "contrast_alone": (VALID_TOML + "[sampling]\ncontrast = 1\n", "'sampling.contrast'"),
    "contrast_range": (VALID_TOML + '[sampling]\ncontrast_genre = "pop"\ncontrast = 9\n', "'sampling.contrast'"),
    "contrast_genre": (VALID_TOML + '[sampling]\ncontrast_genre = "trap"\ncontrast = 1\n',
                       "'sampling.contrast_genre'"),
    "bad_voice": (VALID_TOML + "[humanize.voice_offsets_ms]\ncowbell = 3\n",
                  "'humanize.voice_offsets_ms.cowbell'"),
    "typo_key": (VALID_TOML.replace("swing = 55", "swng = 55"), "'humanize.swng'"),
    "fill_every": (VALID_TOML.replace("kind =", "fill_every = 3\nkind ="), "'fill_every'"),
    "bad_kind": (VALID_TOML.replace('kind = "genre"', 'kind = "band"'), "'kind'"),
    "art_prob": (VALID_TOML + '[[articulations]]\ntype = "hat_rolls"\nprobability = 2\n',
                 "'articulations[0].probability'"),
    "art_date": (VALID_TOML + '[[articulations]]\ntype = "x"\nwhen = 2024-01-01\n',
                 "'articulations[0].when'"),
}


@pytest.mark.parametrize("stem", list(BROKEN), ids=list(BROKEN))
def test_load_preset_names_file_and_field(tmp_path: Path, stem: str) -> None:
    text, field_hint = BROKEN[stem]
    path = tmp_path / f"{stem}.toml"
    path.write_text(text)
    with pytest.raises(StylePresetError) as exc:
        load_preset(path)
    assert str(path) in str(exc.value)
    assert field_hint in str(exc.value)


def test_file_name_must_be_an_id(tmp_path: Path) -> None:
    bad = tmp_path / "My Style.toml"
    bad.write_text(VALID_TOML)
    (tmp_path / "good.toml").write_text(VALID_TOML.replace("Test Style", "Good"))
    assert list_available_styles(tmp_path) == ["good"]
    assert "file name must be a lowercase id" in preset_problems(tmp_path)[str(bad)]


def test_valid_minimal_preset_gets_documented_defaults(tmp_path: Path) -> None:
    path = tmp_path / "minimal.toml"
    path.write_text(VALID_TOML)
    p = load_preset(path)
    assert p.id == "minimal" and p.humanize.swing == 55
    assert (p.tempo_scale, p.fill_every, p.checkpoint, p.version) == (1.0, 0, None, 1)
    assert (p.temperature, p.top_k, p.top_p) == (styles.DEFAULT_TEMPERATURE, styles.DEFAULT_TOP_K,
                                                 styles.DEFAULT_TOP_P)
    assert p.humanize.articulations == ()


@pytest.mark.parametrize("stem", ["bad_toml", "missing_name", "swing_range", "unknown_kit"])
def test_broken_file_is_skipped_and_others_still_load(
    styles_copy: Path, stem: str, caplog: pytest.LogCaptureFixture
) -> None:
    text, field_hint = BROKEN[stem]
    broken = styles_copy / f"{stem}.toml"
    broken.write_text(text)
    with caplog.at_level(logging.WARNING, logger="drumgen.styles"):
        ids = list_available_styles(styles_copy)
    assert len(ids) == 15 and stem not in ids
    assert str(broken) in caplog.text
    problems = preset_problems(styles_copy)
    assert list(problems) == [str(broken)]
    assert field_hint in problems[str(broken)]
    # asking for the broken style explains why instead of just "unknown"
    with pytest.raises(StylePresetError, match=re.escape(field_hint)):
        get_style(stem, styles_copy)
    assert get_style("J Dilla", styles_copy).humanize.swing == 62


def test_broken_shipped_preset_does_not_take_others_down(styles_copy: Path) -> None:
    path = styles_copy / "funk.toml"
    path.write_text(re.sub(r"micro_timing_ms = \d+", "micro_timing_ms = 500", path.read_text()))
    assert "funk" not in list_available_styles(styles_copy)
    assert len(list_styles(styles_copy)) == 14
    with pytest.raises(StylePresetError, match="humanize.micro_timing_ms"):
        get_style("Funk", styles_copy)


def test_env_var_selects_styles_dir_and_new_files_are_picked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "mystyles"
    d.mkdir()
    (d / "one.toml").write_text(VALID_TOML.replace("Test Style", "One"))
    monkeypatch.setenv(styles.STYLES_DIR_ENV, str(d))
    assert list_available_styles() == ["one"]
    (d / "two.toml").write_text(VALID_TOML.replace("Test Style", "Two"))
    assert list_available_styles() == ["one", "two"]
    assert get_style("TWO").name == "Two"


def test_duplicate_display_name_is_reported(tmp_path: Path) -> None:
    (tmp_path / "aaa.toml").write_text(VALID_TOML)
    (tmp_path / "bbb.toml").write_text(VALID_TOML)
    assert list_available_styles(tmp_path) == ["aaa"]
    assert "clashes with style preset 'aaa'" in preset_problems(tmp_path)[str(tmp_path / "bbb.toml")]


def test_missing_styles_dir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        list_styles(tmp_path / "nope")


# ---------------------------------------------------------------- model path


def test_get_model_path_missing_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "none.pt"
    monkeypatch.setenv(styles.CHECKPOINT_ENV, str(missing))
    with pytest.raises(FileNotFoundError) as exc:
        get_model_path("j_dilla")
    assert str(missing) in str(exc.value)
    assert "python -m drumgen train --data ../shared/groove" in str(exc.value)


@pytest.mark.parametrize("style_id", ["j_dilla", "j_dilla_v1", "J Dilla", "funk"])
def test_get_model_path_shared_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, style_id: str
) -> None:
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"x")
    monkeypatch.setenv(styles.CHECKPOINT_ENV, str(ckpt))
    assert get_model_path(style_id) == ckpt.resolve()


def test_get_model_path_default_is_the_shipped_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = Path("/nonexistent-repo") / "checkpoints" / "drumgen.pt"
    monkeypatch.setattr(styles, "DEFAULT_CHECKPOINT", missing)
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing)) + ".*python -m drumgen train"):
        get_model_path("rock")


def test_get_model_path_preset_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = tmp_path / "own.pt"
    shared = tmp_path / "shared.pt"
    shared.write_bytes(b"x")
    monkeypatch.setenv(styles.CHECKPOINT_ENV, str(shared))
    (tmp_path / "special.toml").write_text(VALID_TOML.replace("kind =", f'checkpoint = "{own}"\nkind ='))
    # the preset's own checkpoint is used, with no silent fallback to the shared one
    with pytest.raises(FileNotFoundError, match=re.escape(str(own))):
        get_model_path("special", tmp_path)
    own.write_bytes(b"x")
    assert get_model_path("special_v1", tmp_path) == own


def test_get_model_path_unknown_style() -> None:
    with pytest.raises(UnknownStyleError):
        get_model_path("timbaland")
