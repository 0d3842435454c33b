"""The function image's runtime, reproduced on this machine: what tests/deploy/test_image_runtime.py runs the
functions in.

fnproject/python:3.11 runs `/python/bin/fdk /function/func.py handler` with the distribution's Python 3.11,
PYTHONPATH=/function:/python, as uid 1000, on a read-only root filesystem but /tmp, with OpenSSL 1.1.1 and
zlib 1.2.11. Here:

- `build_tree(root)` makes the image's two folders as the Dockerfile does, under umask 077 (the worst a
  checkout can hand it): `root/python` from the image's wheel set (tools/image_wheels.py: glibc 2.28,
  CPython 3.11, pruned), `root/function/<name>/func.py`, then the Dockerfile's own `chmod` line on both.
- `container(...)` starts a function in its own mount namespace (unshare) where every writable mount but
  /tmp is remounted read-only, and the image folders too; then as uid 1000 (setpriv), /usr/bin/python3.11.
- The native libraries: this machine's OpenSSL 3 is made unloadable *for the product* by an LD_PRELOAD
  interposer (compiled here) that refuses dlopen of the named files, as if absent; the image's real
  OpenSSL 1.1.1 libcrypto and zlib 1.2.11 (tests/image_libraries.py) are on LD_LIBRARY_PATH. Python's own
  ssl and hashlib stay on OpenSSL 3 (this machine's python3.11 is linked to it, and the dynamic linker
  loads a module's dependencies without calling dlopen): only the product's explicit loads are refused,
  which is exactly what the image lacks for them. zlib 1.2.11 is the process's only zlib, as on the image.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.emulators.chain import FUNCTIONS
from tests.emulators.fdk_runtime import Container
from tools.image_wheels import install

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
IMAGE_WHEELS = REPO / ".local" / "image-wheels"
SYSTEM_PYTHON = Path("/usr/bin/python3.11")  # the distribution's, like the image's; readable by all
UID = 1000
OPENSSL_3 = ("libcrypto.so.3", "libssl.so.3")
OPENSSL_111 = ("libcrypto.so.1.1", "libssl.so.1.1")
WRITABLE = ("/tmp", "/proc")  # and what lies below them

INTERPOSER = r"""
/* dlopen of a file named in DLOPEN_REFUSE (colon-separated names) fails as if the file did not exist. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *refused(const char *file) {
    const char *names = getenv("DLOPEN_REFUSE");
    if (file == NULL || names == NULL) return NULL;
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t length = strlen(base);
    for (const char *name = names; *name != '\0';) {
        const char *end = strchr(name, ':');
        size_t size = end ? (size_t)(end - name) : strlen(name);
        if (size == length && strncmp(name, base, size) == 0) return base;
        if (end == NULL) break;
        name = end + 1;
    }
    return NULL;
}

void *dlopen(const char *file, int mode) {
    static void *(*real)(const char *, int);
    if (real == NULL) real = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
    const char *base = refused(file);
    if (base != NULL) {  /* the loader's own error, for a path that cannot exist */
        char absent[512];
        snprintf(absent, sizeof absent, "/dlopen-refused/%s", base);
        return real(absent, mode);
    }
    return real(file, mode);
}
"""

# The one shell the container starts in: mounts made, then the user changed, then the function's command.
ENTER = """set -e
mount --bind /tmp /tmp
for folder in $READ_ONLY_BINDS; do mount --bind "$folder" "$folder"; done
for mount in $READ_ONLY_BINDS $WRITABLE_MOUNTS; do mount -o remount,bind,ro "$mount"; done
exec setpriv --reuid={uid} --regid={uid} --clear-groups -- "$@"
"""


def dockerfile_modes() -> str:
    """The Dockerfile's chmod of the image folders (its build stage): what makes them readable by uid 1000."""
    found = re.search(r"chmod -R (\S+) /python /function\b", DOCKERFILE.read_text())
    assert found, (
        "the Dockerfile no longer makes /python and /function readable (chmod -R ... /python /function)"
    )
    return found[1]


def build_tree(root: Path, wheels: Path = IMAGE_WHEELS) -> Path:
    """root/python and root/function/<name>/func.py, as the image holds them; returns root."""
    root.mkdir(mode=0o755)  # the image's /, which the Dockerfile leaves as the base image made it
    root.chmod(0o755)
    previous = os.umask(0o077)  # a checkout that gives the group and others nothing
    try:
        python = install(root, wheels)
        for name in FUNCTIONS:
            folder = root / "function" / name
            folder.mkdir(parents=True)
            shutil.copyfile(REPO / "functions" / name / "func.py", folder / "func.py")
    finally:
        os.umask(previous)
    subprocess.run(["chmod", "-R", dockerfile_modes(), str(python), str(root / "function")], check=True)
    return root


def build_interposer(folder: Path) -> Path:
    source, library = folder / "refuse_dlopen.c", folder / "refuse_dlopen.so"
    source.write_text(INTERPOSER)
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-o", str(library), str(source), "-ldl"], check=True
    )
    return library


def writable_mounts() -> list[str]:
    """Mount points mounted read-write here, but /tmp and /proc (and what lies below them)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point = fields[4].encode().decode("unicode_escape")  # octal escapes: \040 is a space
        below = any(point == top or point.startswith(top + "/") for top in WRITABLE)
        if "rw" in fields[5].split(",") and not below:
            found.append(point)
    return found


def container(
    tree: Path,
    interposer: Path,
    *,
    refuse: Sequence[str],
    library_path: Path | None,
    read_only: Sequence[Path] = (),
) -> Container:
    """The image's way of starting a function from `tree` (its /python): the libraries named in `refuse`
    cannot be dlopen'ed, `library_path` is searched first, `read_only` folders (under /tmp) are read-only."""
    script = ENTER.format(uid=UID)

    def wrap(command: list[str]) -> list[str]:
        unshare = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "container"]
        return [*unshare, str(SYSTEM_PYTHON), *command]

    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "LD_PRELOAD": str(interposer),
        "DLOPEN_REFUSE": ":".join(refuse),
        "READ_ONLY_BINDS": " ".join(str(folder) for folder in (tree, *read_only)),
        "WRITABLE_MOUNTS": " ".join(writable_mounts()),
    }
    if library_path is not None:
        env["LD_LIBRARY_PATH"] = str(library_path)
    return Container(wrap=wrap, env=env, python_path=(tree / "python",), uid=UID)
