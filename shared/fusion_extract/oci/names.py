"""Object Storage's naming rules, checked before any call so that a bad name never reaches the service."""

from __future__ import annotations

from fusion_extract.errors import UnsafeInputError

MAX_NAME_BYTES = 1024
_FORBIDDEN = {"\n": "a line feed", "\r": "a carriage return", "\x00": "a NUL character"}


def object_name(name: str) -> str:
    """The name unchanged if Object Storage accepts it: 1..1024 chars, <= 1024 UTF-8 bytes, no LF/CR/NUL."""
    if not name:
        raise UnsafeInputError("object name must not be empty")
    return _checked(name, "object name")


def name_prefix(prefix: str) -> str:
    """A listing prefix: like a name, but may be empty (the whole bucket)."""
    return _checked(prefix, "object name prefix") if prefix else prefix


def _checked(name: str, what: str) -> str:
    for char, label in _FORBIDDEN.items():
        if char in name:
            raise UnsafeInputError(f"{what} {name[:80]!r} contains {label}")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise UnsafeInputError(f"{what} {name[:80]!r} is not valid UTF-8 (lone surrogate)") from None
    if size > MAX_NAME_BYTES:
        raise UnsafeInputError(f"{what} is {size} bytes in UTF-8; Object Storage allows {MAX_NAME_BYTES}")
    return name
