"""Real builds of the function image's native libraries, taken out of pinned wheels that vendor them
(`make image-wheels` downloads the wheels into .local/image-libs; tests/image-libraries.txt pins them).

fnproject/python:3.11 has OpenSSL 1.1.1 and zlib 1.2.11; psycopg2-binary 2.9.9 vendors OpenSSL 1.1.1w's
libcrypto and Pillow 9.0.1 zlib 1.2.11. `unpack(dest)` writes them under the names the image gives them.

    folder = unpack(tmp_path)      # folder/libcrypto.so.1.1, folder/libz.so.1
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WHEELS = REPO / ".local" / "image-libs"
LIBCRYPTO, LIBZ = "libcrypto.so.1.1", "libz.so.1"
# (wheel, vendored file) -> the image's name for it
VENDORED = {
    ("psycopg2_binary-2.9.9-", r"psycopg2_binary\.libs/libcrypto-[0-9a-f]+\.so\.1\.1"): LIBCRYPTO,
    ("Pillow-9.0.1-", r"Pillow\.libs/libz-[0-9a-f]+\.so\.1\.2\.11"): LIBZ,
}


def unpack(dest: Path) -> Path:
    """The image's libcrypto.so.1.1 and libz.so.1 in `dest`; skips the test when the wheels are absent."""
    dest.mkdir(parents=True, exist_ok=True)
    for (prefix, member), name in VENDORED.items():
        wheel = next(WHEELS.glob(f"{prefix}*.whl"), None)
        if wheel is None:
            pytest.skip(f"no {prefix}*.whl in {WHEELS}: run `make image-wheels` (make test does)")
        with zipfile.ZipFile(wheel) as archive:
            found = [info for info in archive.infolist() if re.fullmatch(member, info.filename)]
            assert len(found) == 1, f"{wheel.name} holds no single {member}"
            (dest / name).write_bytes(archive.read(found[0]))
        (dest / name).chmod(0o755)
    return dest
