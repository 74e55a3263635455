"""Files replaced whole or not at all: the one atomic write of the repository (no torch, no Django).

The generator writes images, sidecars, checkpoints and training logs with it; the platform's
exports and codebook with it too (``studyserver.exports.formats.atomic_write``). A reader sees the
old file or the whole new one, never a half-written file, and a failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: Readable by the other services that read what one writes (the web process serves the
#: generator's images), as a file written with ``open`` under the usual umask would be.
SHARED_FILE_MODE = 0o644


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str], *, mode: int = SHARED_FILE_MODE) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to. When the block ends without error the file is
    flushed to disk, given ``mode`` and renamed over ``path``; on any error it is removed and
    ``path`` is left as it was. The temporary name keeps ``path``'s suffix, so writers that choose
    a format by extension (PIL) choose the right one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                        suffix=f".partial{target.suffix}")
    os.close(descriptor)
    temporary = Path(name)
    try:
        yield temporary
        with temporary.open("rb+") as written:
            os.fsync(written.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = SHARED_FILE_MODE) -> Path:
    """Replace ``path`` with ``data`` (see :func:`replacing`)."""
    with replacing(path, mode=mode) as temporary:
        temporary.write_bytes(data)
    return Path(path)
