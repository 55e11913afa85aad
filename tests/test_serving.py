"""The app's serving helpers on their own: core sharing between concurrent requests, the temp area."""

from __future__ import annotations

import os
import threading
import time

import torch

from drumgen.serving import CoreShare, TempArea, files_max_age


def test_a_request_alone_gets_every_core_and_concurrent_ones_share_them() -> None:
    share = CoreShare(cores=2)
    seen: dict[str, int] = {}
    first_in, second_done = threading.Event(), threading.Event()

    def first() -> None:
        with share.claim() as threads:
            seen["first"], seen["first_torch"] = threads, torch.get_num_threads()
            first_in.set()
            second_done.wait(10)

    def second() -> None:
        first_in.wait(10)
        with share.claim() as threads:
            seen["second"], seen["second_torch"] = threads, torch.get_num_threads()
        second_done.set()

    workers = [threading.Thread(target=first), threading.Thread(target=second)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(20)
    assert seen == {"first": 2, "first_torch": 2, "second": 1, "second_torch": 1}
    before = torch.get_num_threads()
    try:
        with share.claim() as threads:  # both finished: the next one is alone again
            assert threads == 2 and share.running == 1
    finally:
        torch.set_num_threads(before)
    assert share.running == 0


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
