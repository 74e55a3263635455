"""The repository's one atomic write: a file is replaced whole or not at all."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from PIL import Image

from generator.files import SHARED_FILE_MODE, replacing, write_bytes


def test_write_bytes_replaces_whole_files_and_leaves_nothing_beside(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.bin"
    write_bytes(target, b"first")
    write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert [path.name for path in target.parent.iterdir()] == ["file.bin"]
    assert stat.S_IMODE(target.stat().st_mode) == SHARED_FILE_MODE


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "export.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), replacing(target) as temporary:
        temporary.write_text("half of the new")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["export.csv"]


def test_the_temporary_keeps_the_suffix_and_the_mode_is_the_callers(tmp_path: Path) -> None:
    target = tmp_path / "grid.png"
    with replacing(target, mode=0o640) as temporary:
        assert temporary.suffix == ".png" and temporary.parent == tmp_path
        Image.new("RGB", (2, 2)).save(temporary)  # PIL picks the format from the suffix
    assert Image.open(target).format == "PNG"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
