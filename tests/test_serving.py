"""The app's serving helpers on their own: core sharing between concurrent requests, the temp area."""

from __future__ import annotations

import os
import threading
import time

import torch

from drumgen.serving import TempArea, files_max_age, use_one_compute_thread


def test_a_worker_thread_computes_with_one_thread_and_leaves_others_alone() -> None:
    seen: dict[str, int] = {}

    def worker() -> None:
        use_one_compute_thread()
        seen["worker"] = torch.get_num_threads()

    before = torch.get_num_threads()
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(20)
    assert seen == {"worker": 1}
    assert torch.get_num_threads() == before  # the calling thread keeps its own setting


def test_stale_request_folders_are_removed_and_fresh_ones_kept() -> None:
    area = TempArea(max_age_s=60)
    old, recent = area.request_dir(), area.request_dir()
    (old / "groove.mid").write_bytes(b"MThd")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    new = area.request_dir()
    assert not old.exists() and recent.is_dir() and new.is_dir() and new.parent == area.root


def test_file_lifetime_comes_from_the_environment_with_a_safe_default(monkeypatch) -> None:
    monkeypatch.setenv("DRUMGEN_FILES_MAX_AGE_S", "90")
    assert files_max_age() == 90
    monkeypatch.setenv("DRUMGEN_FILES_MAX_AGE_S", "ten minutes")
    assert files_max_age() == 600
    monkeypatch.delenv("DRUMGEN_FILES_MAX_AGE_S")
    assert files_max_age() == 600
