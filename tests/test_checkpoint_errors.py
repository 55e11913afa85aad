"""Missing and damaged checkpoints give one clear error, never a torch traceback or a silent bad model."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from drumgen.model_loader import CheckpointError, load_bundle, load_model, load_tokenizer

pytestmark = pytest.mark.usefixtures("torch_single_thread")

TRAIN_COMMAND = "python -m drumgen train"
TORCH_INTERNALS = ("Traceback", "weights_only", "torch/", "_pickle", "pickle.", "site-packages", "zipfile")


@pytest.fixture(autouse=True)
def fresh_caches():
    """load_model/load_tokenizer are lru-cached per path: start and end every test with empty caches."""
    load_model.cache_clear()
    load_tokenizer.cache_clear()
    yield
    load_model.cache_clear()
    load_tokenizer.cache_clear()


@pytest.fixture
def good(tiny_checkpoint: tuple[Path, dict]) -> dict:
    """The tiny trained checkpoint's dict, freshly read."""
    return torch.load(tiny_checkpoint[0] / "drumgen.pt", map_location="cpu", weights_only=True)


def assert_clear(message: str, path: Path) -> None:
    assert str(path) in message, message
    assert "\n" not in message, message
    assert len(message) < 400, message
    for internal in TORCH_INTERNALS:
        assert internal not in message, f"{internal!r} in {message!r}"


# --- missing ----------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["missing-file", "missing-folder", "a-directory"])
def test_missing_checkpoint_names_path_and_train_command(tmp_path: Path, where: str) -> None:
    path = {"missing-file": tmp_path / "drumgen.pt", "missing-folder": tmp_path / "nowhere" / "drumgen.pt",
            "a-directory": tmp_path}[where]
    with pytest.raises(FileNotFoundError) as err:
        load_model(str(path))
    assert str(path) in str(err.value)
    assert TRAIN_COMMAND in str(err.value)
    with pytest.raises(FileNotFoundError, match="python -m drumgen train"):
        load_bundle(path)


def test_missing_tokenizer_beside_checkpoint_names_it(tiny_checkpoint: tuple[Path, dict], tmp_path: Path) -> None:
    shutil.copy(tiny_checkpoint[0] / "drumgen.pt", tmp_path / "drumgen.pt")
    with pytest.raises(FileNotFoundError) as err:
        load_bundle(tmp_path / "drumgen.pt", device="cpu")
    assert str(tmp_path / "tokenizer.json") in str(err.value) and TRAIN_COMMAND in str(err.value)


# --- damaged ------------------------------------------------------------------------------------
class Boom:
    """Unpickling this would create a file: a checkpoint must never run code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def write_damaged(kind: str, path: Path, good: dict, real: Path) -> None:
    if kind == "random-bytes":
        path.write_bytes(os.urandom(4096))
    elif kind == "empty-file":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = real.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "text-file":
        path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
    elif kind == "no-model-args":
        torch.save({"model": good["model"]}, path)
    elif kind == "no-state-dict":
        torch.save({"model_args": good["model_args"]}, path)
    elif kind == "not-a-dict":
        torch.save([good["model"]], path)
    elif kind == "wrong-shapes":
        torch.save({**good, "model_args": {**good["model_args"], "n_embd": 64}}, path)
    elif kind == "missing-weights":
        torch.save({**good, "model": {k: v for k, v in good["model"].items() if "ln_f" not in k}}, path)
    elif kind == "unknown-model-arg":
        torch.save({**good, "model_args": {**good["model_args"], "n_experts": 8}}, path)
    elif kind == "model-args-not-a-dict":
        torch.save({**good, "model_args": "n_layer=1"}, path)
    elif kind == "code-in-pickle":
        with path.open("wb") as fh:
            pickle.dump({**good, "extra": Boom(str(path) + ".pwned")}, fh, protocol=2)
    else:  # pragma: no cover
        raise AssertionError(kind)


DAMAGE = ["random-bytes", "empty-file", "truncated", "text-file", "no-model-args", "no-state-dict", "not-a-dict",
          "wrong-shapes", "missing-weights", "unknown-model-arg", "model-args-not-a-dict", "code-in-pickle"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_checkpoint_raises_checkpoint_error(kind: str, tmp_path: Path, good: dict,
                                                    tiny_checkpoint: tuple[Path, dict]) -> None:
    path = tmp_path / "drumgen.pt"
    write_damaged(kind, path, good, tiny_checkpoint[0] / "drumgen.pt")
    with pytest.raises(CheckpointError) as err:
        load_model(str(path), "cpu")
    assert_clear(str(err.value), path)
    exc = err.value
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__), \
        "torch's exception must not be chained into the report"
    assert not Path(str(path) + ".pwned").exists(), "loading a checkpoint ran code from its pickle"


def test_error_names_what_is_wrong(tmp_path: Path, good: dict, tiny_checkpoint: tuple[Path, dict]) -> None:
    real = tiny_checkpoint[0] / "drumgen.pt"
    expected = {"random-bytes": "corrupt", "truncated": "corrupt", "no-model-args": "model_args",
                "wrong-shapes": "does not match", "unknown-model-arg": "n_experts"}
    for kind, words in expected.items():
        path = tmp_path / f"{kind}.pt"
        write_damaged(kind, path, good, real)
        with pytest.raises(CheckpointError, match=words):
            load_model(str(path), "cpu")


def test_a_fixed_file_at_the_same_path_loads_after_cache_clear(tmp_path: Path, good: dict) -> None:
    """A failed load is not cached as a failure, and the cache is per path."""
    path = tmp_path / "drumgen.pt"
    path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        load_model(str(path), "cpu")
    torch.save(good, path)
    model, meta = load_model(str(path), "cpu")
    assert meta["model_args"] == good["model_args"]
    assert load_model(str(path), "cpu")[0] is model


@pytest.mark.parametrize("tokenizer", ["corrupt-json", "json-list", "other-vocabulary"])
def test_bad_tokenizer_beside_good_checkpoint(tokenizer: str, tmp_path: Path,
                                              tiny_checkpoint: tuple[Path, dict]) -> None:
    shutil.copy(tiny_checkpoint[0] / "drumgen.pt", tmp_path / "drumgen.pt")
    config = tmp_path / "tokenizer.json"
    config.write_text({"corrupt-json": '{"config": {', "json-list": "[]",
                       "other-vocabulary": "{}"}[tokenizer])  # {}: MidiTok's default REMI, 388 tokens
    with pytest.raises(CheckpointError) as err:
        load_bundle(tmp_path / "drumgen.pt", device="cpu")
    message = str(err.value)
    assert str(tmp_path) in message and "\n" not in message
    assert "Traceback" not in message
