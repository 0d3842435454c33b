"""Hashing and inflating that can stop in one invocation and go on in another, on another machine.

The standard library cannot save either: hashlib has no state export and zlib.decompressobj cannot be
serialized. Both are reached here through ctypes, onto the C libraries the Python runtime already has:
OpenSSL's libcrypto (1.1.1 on the function image, fnproject/python:3.11; 3.x elsewhere: SHA256_CTX is
the same 112 bytes in both, so a state saved by one resumes in the other) and zlib's libz.so.1 (every
call used here exists since zlib 1.2.7.1; the image has 1.2.11). Each is the very library this Python's
own hashlib / zlib module uses when that can be found, else the first that loads of its known sonames.
They are loaded on first use, never at import; none loading is a ConfigError naming each library tried,
why it failed, and where the dynamic linker looked. `self_test()` proves both work (submit runs it).

    digest = Sha256()                       # or Sha256(saved) to go on from a saved state
    digest.update(piece)                    # bytes, bytearray or memoryview, never copied
    saved = digest.state()                  # 112 bytes: OpenSSL's SHA256_CTX
    digest.hexdigest()                      # the digest so far; the running state is untouched
    saved = seal(data); unseal(saved, what) # state saved for another invocation, checked before use

    inflater = Inflater()                   # or Inflater(point): then feed from point.consumed
    for out in inflater.feed(chunk, stop=should_stop):
        ...                                 # pieces of at most PIECE bytes
    inflater.finished                       # the final block ended; `unused` holds what came after it
    inflater.stopped                        # an InflatePoint when should_stop() said yes at a boundary

An InflatePoint is the zran technique (zlib's examples/zran.c): at a deflate block boundary, the whole
decoder state is the bit position in the input and the last 32 KiB of output (the window that later
back-references may reach). A new inflater primed with the boundary byte's unused bits and given the
window as its dictionary decodes the rest exactly. The window is read from zlib itself
(inflateGetDictionary) only when stopping: nothing is kept or copied per block.

Both states are native-endian machine words (x86-64 and arm64 alike: little-endian); they travel between
machines of the same byte order, which is every machine OCI Functions runs on.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import importlib.util
import os
import struct
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from fusion_extract.errors import ConfigError, IntegrityError

PIECE = 256 * 1024  # the largest piece of output `feed` yields (its one output buffer)
WINDOW = 32 * 1024  # deflate's farthest back-reference: what a point keeps of the output before it

_T = TypeVar("_T")


# --- loading ----------------------------------------------------------------------------------------

# Tried in order after the library this Python's own module uses: OpenSSL 3.x, then 1.1.1 (Oracle Linux 8).
OPENSSL_SONAMES = ("libcrypto.so.3", "libcrypto.so.1.1")
ZLIB_SONAMES = ("libz.so.1",)
ZLIB_NG_MODULE = "zlib_ng.zlib_ng"  # the zlib-ng package's extension: zlib-ng itself, linked in

_Function = Callable[..., Any]


class _DlInfo(ctypes.Structure):
    _fields_ = (
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    )


@functools.cache
def _dladdr() -> _Function | None:
    """glibc's dladdr: in libc since 2.34, in libdl before (2.28 on the image)."""
    for name in (None, "libdl.so.2"):
        try:
            function = ctypes.CDLL(name)["dladdr"]
        except (OSError, AttributeError):
            continue
        function.restype, function.argtypes = ctypes.c_int, (ctypes.c_void_p, ctypes.POINTER(_DlInfo))
        return function
    return None


def _file_of(function: _Function) -> str | None:
    """The file of the shared object that holds `function`, as the dynamic linker mapped it."""
    dladdr, info = _dladdr(), _DlInfo()
    address = ctypes.cast(function, ctypes.c_void_p).value  # type: ignore[arg-type]  # a CFuncPtr
    if dladdr is None or not dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.fsdecode(info.dli_fname)


def _own(module: str, symbol: str) -> list[str]:
    """[the library that gives this Python's extension `module` its `symbol`], or [] when there is none:
    a built-in module, or one linked statically (the symbol is then in the module's own file)."""
    try:
        path = getattr(importlib.import_module(module), "__file__", None)
        found = _file_of(ctypes.CDLL(path)[symbol]) if path else None  # already loaded: no new mapping
    except (ImportError, OSError, AttributeError):
        return []
    return [found] if found and Path(found).name != Path(path or "").name else []


def _function(lib: ctypes.CDLL, name: str, restype: Any, *argtypes: Any) -> _Function:
    try:
        function = lib[name]  # a private prototype: no one else's argtypes are changed
    except AttributeError as exc:
        raise ConfigError(f"{lib._name} has no {name}: not the library this module was written for") from exc
    function.restype = restype
    function.argtypes = argtypes
    return function


def _open(name: str) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(name)
    except OSError as exc:
        raise ConfigError(f"{name}: {exc}") from exc


def _first(what: str, candidates: list[str], load: Callable[[str], _T]) -> _T:
    """The first candidate that loads and binds; else a ConfigError naming each and where ld.so looked."""
    tried = []
    for name in dict.fromkeys(candidates):
        try:
            return load(name)
        except ConfigError as exc:
            tried.append(str(exc))
    where = os.environ.get("LD_LIBRARY_PATH") or "unset"
    raise ConfigError(
        f"no usable {what}; tried {'; '.join(tried)} (sonames are looked up in LD_LIBRARY_PATH={where}, "
        "/etc/ld.so.cache and the system library directories)"
    )


@dataclass(frozen=True)
class Libcrypto:
    """OpenSSL's SHA-256, bound: `name` as loaded, `path` the file it is."""

    name: str
    path: str
    version: str
    init: _Function = field(repr=False)
    update: _Function = field(repr=False)
    final: _Function = field(repr=False)


def load_libcrypto(name: str) -> Libcrypto:
    """Bind OpenSSL's SHA-256 in the library `name` (a soname or a path) and check its context layout."""
    lib = _open(name)
    p, size = ctypes.c_void_p, ctypes.c_size_t
    init = _function(lib, "SHA256_Init", ctypes.c_int, p)
    version = _function(lib, "OpenSSL_version", ctypes.c_char_p, ctypes.c_int)(0)  # 1.1.0 and later
    crypto = Libcrypto(
        name=name,
        path=_file_of(init) or name,
        version=version.decode(errors="replace"),
        init=init,
        update=_function(lib, "SHA256_Update", ctypes.c_int, p, p, size),
        final=_function(lib, "SHA256_Final", ctypes.c_int, p, p),
    )
    # The context is OpenSSL's public SHA256_CTX; make sure this build lays it out as declared below.
    probe = ctypes.create_string_buffer(b"\xa5" * (_CTX.size + 16), _CTX.size + 16)
    crypto.init(probe)
    h0, md_len = _CTX.unpack_from(probe.raw)[0], _CTX.unpack_from(probe.raw)[-1]
    if h0 != 0x6A09E667 or md_len != _DIGEST or probe.raw[_CTX.size :] != b"\xa5" * 16:
        raise ConfigError(f"{name}: SHA256_CTX is not the {_CTX.size}-byte layout this module expects")
    return crypto


@functools.cache
def libcrypto() -> Libcrypto:
    """This process's OpenSSL: the one hashlib uses, else the first of OPENSSL_SONAMES that works."""
    return _first("OpenSSL libcrypto", [*_own("_hashlib", "SHA256_Init"), *OPENSSL_SONAMES], load_libcrypto)


class _ZStream(ctypes.Structure):
    """zlib's z_stream on LP64 (64-bit Linux); inflateInit2_ checks the size."""

    _fields_ = (
        ("next_in", ctypes.c_void_p),
        ("avail_in", ctypes.c_uint),
        ("total_in", ctypes.c_ulong),
        ("next_out", ctypes.c_void_p),
        ("avail_out", ctypes.c_uint),
        ("total_out", ctypes.c_ulong),
        ("msg", ctypes.c_char_p),
        ("state", ctypes.c_void_p),
        ("zalloc", ctypes.c_void_p),
        ("zfree", ctypes.c_void_p),
        ("opaque", ctypes.c_void_p),
        ("data_type", ctypes.c_int),
        ("adler", ctypes.c_ulong),
        ("reserved", ctypes.c_ulong),
    )


class _ZngStream(ctypes.Structure):
    """zlib-ng's native zng_stream: z_stream's fields, but a 32-bit adler (so 104 bytes, not 112)."""

    _fields_ = (
        ("next_in", ctypes.c_void_p),
        ("avail_in", ctypes.c_uint32),
        ("total_in", ctypes.c_size_t),
        ("next_out", ctypes.c_void_p),
        ("avail_out", ctypes.c_uint32),
        ("total_out", ctypes.c_size_t),
        ("msg", ctypes.c_char_p),
        ("state", ctypes.c_void_p),
        ("zalloc", ctypes.c_void_p),
        ("zfree", ctypes.c_void_p),
        ("opaque", ctypes.c_void_p),
        ("data_type", ctypes.c_int),
        ("adler", ctypes.c_uint32),
        ("reserved", ctypes.c_ulong),
    )


@dataclass(frozen=True)
class Libz:
    """A raw inflate, bound (zlib, or zlib-ng's native API): `name` as loaded, `path` the file it is.

    `stream` is the library's z_stream type and `init(stream_ref)` opens it for raw deflate."""

    name: str
    path: str
    version: bytes
    stream: type[ctypes.Structure] = field(repr=False)
    init: Callable[[Any], int] = field(repr=False)
    inflate: _Function = field(repr=False)
    prime: _Function = field(repr=False)
    set_dictionary: _Function = field(repr=False)
    get_dictionary: _Function = field(repr=False)
    end: _Function = field(repr=False)


def load_libz(name: str) -> Libz:
    """Bind the inflate calls in the zlib `name` (a soname or a path)."""
    lib = _open(name)
    p, i, u = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint
    version = _function(lib, "zlibVersion", ctypes.c_char_p)
    init2 = _function(lib, "inflateInit2_", i, p, i, ctypes.c_char_p, i)
    found = version()
    return Libz(
        name=name,
        path=_file_of(version) or name,
        version=found,
        stream=_ZStream,
        init=lambda ref: int(init2(ref, -15, found, ctypes.sizeof(_ZStream))),
        inflate=_function(lib, "inflate", i, p, i),
        prime=_function(lib, "inflatePrime", i, p, i, i),  # zlib 1.2.2.4
        set_dictionary=_function(lib, "inflateSetDictionary", i, p, p, u),
        get_dictionary=_function(lib, "inflateGetDictionary", i, p, p, ctypes.POINTER(u)),  # 1.2.7.1
        end=_function(lib, "inflateEnd", i, p),
    )


def load_zlib_ng(name: str) -> Libz:
    """Bind zlib-ng's native inflate (the zng_* calls) in the library `name`: about twice zlib's speed.
    Its block boundaries and dictionary are zlib's, so an InflatePoint crosses between the two."""
    lib = _open(name)
    p, i, u = ctypes.c_void_p, ctypes.c_int32, ctypes.c_uint32
    version = _function(lib, "zlibng_version", ctypes.c_char_p)
    init2 = _function(lib, "zng_inflateInit2", i, p, i)
    return Libz(
        name=name,
        path=_file_of(version) or name,
        version=version(),
        stream=_ZngStream,
        init=lambda ref: int(init2(ref, -15)),
        inflate=_function(lib, "zng_inflate", i, p, i),
        prime=_function(lib, "zng_inflatePrime", i, p, i, i),
        set_dictionary=_function(lib, "zng_inflateSetDictionary", i, p, p, u),
        get_dictionary=_function(lib, "zng_inflateGetDictionary", i, p, p, ctypes.POINTER(u)),
        end=_function(lib, "zng_inflateEnd", i, p),
    )


@functools.cache
def libz() -> Libz:
    """This process's zlib: the one the zlib module uses, else the first of ZLIB_SONAMES that works."""
    return _first("zlib", [*_own("zlib", "inflate"), *ZLIB_SONAMES], load_libz)


def _zlib_ng_extension() -> str | None:
    """The file of the zlib-ng package's extension (it carries zlib-ng whole), found without importing it."""
    try:
        spec = importlib.util.find_spec(ZLIB_NG_MODULE)
    except ImportError:  # its package is absent
        return None
    return spec.origin if spec is not None else None


@functools.cache
def inflate_library() -> Libz:
    """The inflate `Inflater` uses: zlib-ng where its package is installed (the functions' image), else
    this process's zlib. Both stop and resume at the same points; zlib-ng inflates in about half the time."""
    extension = _zlib_ng_extension()
    return load_zlib_ng(extension) if extension else libz()


@functools.cache
def crc32() -> Callable[[bytes, int], int]:
    """CRC-32 as zlib.crc32 computes it, from zlib-ng where installed (about 3x faster), else zlib's."""
    if _zlib_ng_extension() is None:
        return zlib.crc32
    return importlib.import_module(ZLIB_NG_MODULE).crc32  # type: ignore[no-any-return]


# --- borrowing a buffer without copying it ----------------------------------------------------------


class _PyBuffer(ctypes.Structure):
    """CPython's Py_buffer: the address of any buffer (bytearray, memoryview of bytes...), copied never."""

    _fields_ = (
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_void_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    )


@functools.cache
def _buffer_api() -> tuple[_Function, _Function]:
    get = ctypes.pythonapi["PyObject_GetBuffer"]
    get.restype, get.argtypes = ctypes.c_int, (ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int)
    release = ctypes.pythonapi["PyBuffer_Release"]
    release.restype, release.argtypes = None, (ctypes.POINTER(_PyBuffer),)
    return get, release


class _Borrowed:
    """A contiguous buffer held (and so kept alive and unresizable) until `release()`."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        get, self._release = _buffer_api()
        self._view = _PyBuffer()
        get(data, ctypes.byref(self._view), 0)  # PyBUF_SIMPLE: raises BufferError if not contiguous
        self.address: int = self._view.buf or 0
        self.length: int = self._view.len

    def release(self) -> None:
        if self._view.obj:
            self._release(ctypes.byref(self._view))


# --- sealing: what one invocation saves for another ----------------------------------------------------

SEAL = 32  # the SHA-256 a sealed state ends with


def seal(data: bytes) -> bytes:
    """`data` followed by its SHA-256, so that the invocation that reads it back can tell it is intact."""
    return data + _sha256(data)


def unseal(sealed: bytes, what: str) -> bytes:
    """The data `seal` wrapped; IntegrityError naming `what` when any bit of it changed since."""
    data, check = sealed[:-SEAL], sealed[-SEAL:]
    if len(sealed) < SEAL or _sha256(data) != check:
        raise IntegrityError(f"{what} is damaged: it does not match the checksum saved with it")
    return data


# --- SHA-256 -----------------------------------------------------------------------------------------

# SHA256_CTX: h[8], Nl, Nh, data[16] (the partial block, as bytes), num, md_len.
_CTX = struct.Struct("=8I2I64s2I")
_DIGEST = 32


def _check_state(state: bytes) -> None:
    if len(state) != _CTX.size:
        raise IntegrityError(f"a SHA-256 state is {_CTX.size} bytes, not {len(state)}")
    fields = _CTX.unpack(state)
    low_bits, num, md_len = fields[8], fields[-2], fields[-1]
    # num indexes the partial block and must be the byte count mod 64: past 63, OpenSSL would write
    # beyond the context.
    if md_len != _DIGEST or low_bits % 8 or (low_bits >> 3) % 64 != num:
        raise IntegrityError("not a SHA-256 state: its length counters or buffer index are inconsistent")


class Sha256:
    """SHA-256 whose running state can be saved (`state()`) and resumed (`Sha256(state)`)."""

    __slots__ = ("_ctx", "_lib")

    def __init__(self, state: bytes | None = None, *, library: Libcrypto | None = None) -> None:
        self._lib = library or libcrypto()
        if state is None:
            self._ctx = (ctypes.c_char * _CTX.size)()
            self._lib.init(self._ctx)
        else:
            _check_state(state)
            self._ctx = (ctypes.c_char * _CTX.size).from_buffer_copy(state)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if type(data) is bytes:
            self._lib.update(self._ctx, data, len(data))
            return
        borrowed = _Borrowed(data)
        try:
            self._lib.update(self._ctx, borrowed.address, borrowed.length)
        finally:
            borrowed.release()

    def state(self) -> bytes:
        return bytes(self._ctx)

    @property
    def length(self) -> int:
        """Bytes hashed so far (from the state's own bit counters)."""
        low, high = _CTX.unpack(bytes(self._ctx))[8:10]
        return int(high << 32 | low) >> 3

    def digest(self) -> bytes:
        """The digest of everything so far; finalizes a copy, so updates may go on."""
        copy = (ctypes.c_char * _CTX.size).from_buffer_copy(self._ctx)
        out = (ctypes.c_char * _DIGEST)()
        self._lib.final(out, copy)
        return bytes(out)

    def hexdigest(self) -> str:
        return self.digest().hex()


def _sha256(data: bytes) -> bytes:
    digest = Sha256()  # not hashlib: importing it would load libcrypto at import time
    digest.update(data)
    return digest.digest()


# --- inflate, checkpointable at block boundaries -----------------------------------------------------

_Z_OK, _Z_STREAM_END, _Z_DATA_ERROR, _Z_MEM_ERROR, _Z_BUF_ERROR = 0, 1, -3, -4, -5
_Z_BLOCK = 5
_BOUNDARY, _LAST = 128, 64  # data_type after inflate(Z_BLOCK): at a block's end; in the final block
_MAX_IN = 1 << 30  # avail_in is 32-bit: a larger chunk goes to zlib in slices

# A point's bytes: magic, version, bits, prime, 0, consumed, produced; the window; CRC-32 of all before it.
_POINT = struct.Struct("<4sBBBxQQ")
_MAGIC, _VERSION = b"FXIP", 1


@dataclass(frozen=True)
class InflatePoint:
    """Where an inflate stopped, at a deflate block boundary, and all it needs to go on from there.

    consumed: compressed bytes from the member's start up to the boundary; when bits > 0 the boundary
              falls inside the last of them (its top `bits` bits, `prime`, are the next block's start).
    produced: uncompressed bytes before the boundary; window: the last min(produced, 32 KiB) of them.
    """

    consumed: int
    bits: int
    prime: int
    produced: int
    window: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.bits <= 7 or not 0 <= self.prime < 1 << self.bits:
            raise IntegrityError(f"inflate point: {self.bits} bits cannot hold the value {self.prime}")
        if not 0 < self.consumed < 1 << 64 or not 0 <= self.produced < 1 << 64:
            raise IntegrityError(f"inflate point: offsets {self.consumed}, {self.produced} out of range")
        if len(self.window) != min(self.produced, WINDOW):
            raise IntegrityError(
                f"inflate point: a window of {len(self.window)} bytes after {self.produced} bytes of output"
            )

    def to_bytes(self) -> bytes:
        header = _POINT.pack(_MAGIC, _VERSION, self.bits, self.prime, self.consumed, self.produced)
        body = header + self.window
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes) -> InflatePoint:
        if len(data) < _POINT.size + 4:
            raise IntegrityError(f"inflate point: {len(data)} bytes is too short")
        body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
        if zlib.crc32(body) != crc:
            raise IntegrityError("inflate point: CRC-32 mismatch (damaged or not an inflate point)")
        magic, version, bits, prime, consumed, produced = _POINT.unpack_from(body)
        if magic != _MAGIC or version != _VERSION:
            raise IntegrityError(f"inflate point: unknown format {magic!r} version {version}")
        return cls(consumed, bits, prime, produced, bytes(body[_POINT.size :]))


class Inflater:
    """Raw deflate (a ZIP member's data) that can stop at a block boundary and resume elsewhere.

    Inflater(point) resumes at `point`; the caller then feeds the member's data from `point.consumed`.
    `feed` is a generator: run it to its end (an abandoned one leaves the inflater unusable).
    """

    kind = "resumable"
    crc = None  # no CRC-32 of the output: the caller computes it

    def __init__(self, point: InflatePoint | None = None, *, library: Libz | None = None) -> None:
        self._lib = library or inflate_library()
        self._strm = self._lib.stream()
        self._ref = ctypes.byref(self._strm)
        self._open = False
        ret = self._lib.init(self._ref)
        if ret != _Z_OK:
            raise self._error(ret)
        self._open = True
        self._out = ctypes.create_string_buffer(PIECE)
        self._out_address = ctypes.addressof(self._out)
        self._strm.next_out, self._strm.avail_out = self._out_address, PIECE
        self._base_in = self._base_out = 0
        self._finished = self._feeding = self._abandoned = False
        self._stopped: InflatePoint | None = None
        self._unused = b""
        if point is not None:
            self._base_in, self._base_out = point.consumed, point.produced
            if point.bits and (ret := self._lib.prime(self._ref, point.bits, point.prime)) != _Z_OK:
                raise self._error(ret)
            ret = self._lib.set_dictionary(self._ref, point.window, len(point.window))
            if ret != _Z_OK:
                raise self._error(ret)

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def stopped(self) -> InflatePoint | None:
        """Where the last `feed` stopped because `stop()` said so; None once feeding goes on."""
        return self._stopped

    @property
    def unused(self) -> bytes:
        """Bytes fed after the final block's end (the member's data is over)."""
        return self._unused

    @property
    def consumed(self) -> int:
        return self._base_in + int(self._strm.total_in)

    @property
    def produced(self) -> int:
        return self._base_out + int(self._strm.total_out)

    def feed(
        self, data: bytes | bytearray | memoryview, stop: Callable[[], bool] | None = None
    ) -> Generator[bytes, None, None]:
        """Inflate `data`, yielding the output in pieces of at most PIECE bytes.

        `stop()` is asked at each block boundary but the final block's end; when it says yes, inflating
        stops there: `stopped` holds the point and the rest of `data` is left unconsumed.
        """
        if not self._open or self._abandoned or self._feeding:
            raise ValueError("inflater closed, or a previous feed() was left unfinished")
        if self._finished:
            self._unused += bytes(data)
            return
        self._stopped = None
        self._feeding = True
        borrowed = _Borrowed(data)
        done = False
        try:
            yield from self._inflate(borrowed.address, borrowed.length, stop)
            done = True
        finally:
            borrowed.release()
            self._feeding = False
            self._abandoned = not done

    def _inflate(self, address: int, length: int, stop: Callable[[], bool] | None) -> Iterator[bytes]:
        strm, ref, inflate, out = self._strm, self._ref, self._lib.inflate, self._out_address
        end = address + length
        strm.next_in, strm.avail_in = address, min(length, _MAX_IN)
        while True:
            ret = inflate(ref, _Z_BLOCK)
            if ret == _Z_STREAM_END:
                self._finished = True
                rest = end - (strm.next_in or end)
                self._unused = ctypes.string_at(strm.next_in, rest) if rest else b""
                break
            if ret != _Z_OK and ret != _Z_BUF_ERROR:
                raise self._error(ret)
            full = not strm.avail_out
            if full:
                yield ctypes.string_at(out, PIECE)
                strm.next_out, strm.avail_out = out, PIECE
            if not self._go_on(full, stop, address, end):
                break
        pending = PIECE - strm.avail_out
        if pending:
            strm.next_out, strm.avail_out = out, PIECE
            yield ctypes.string_at(out, pending)

    def _go_on(self, full: bool, stop: Callable[[], bool] | None, address: int, end: int) -> bool:
        """After inflate returned short of the end: whether to call it again (with the chunk's next slice)."""
        strm = self._strm
        kind = strm.data_type
        if kind & _BOUNDARY:
            if kind & _LAST:
                return True  # the final block ended: one more call reports the end, without input
            if stop is not None and stop():
                self._stopped = self._point(kind & 7, address)
                return False
        elif full:
            return True  # more output may be pending, with input or without
        elif strm.avail_in:
            raise RuntimeError("zlib inflate returned with input and output room left")
        rest = end - (strm.next_in or end)
        if not rest:
            return False
        strm.avail_in = min(rest, _MAX_IN)
        return True

    def _point(self, bits: int, address: int) -> InflatePoint:
        strm = self._strm
        prime = 0
        if bits:
            # Every block ends on input this call consumed (a block is longer than 7 held-over bits).
            if strm.next_in <= address:
                raise RuntimeError("a block boundary inside a byte of an earlier chunk")
            prime = ctypes.string_at(strm.next_in - 1, 1)[0] >> (8 - bits)
        window = ctypes.create_string_buffer(WINDOW)
        size = ctypes.c_uint(WINDOW)
        ret = self._lib.get_dictionary(self._ref, window, ctypes.byref(size))
        if ret != _Z_OK:
            raise self._error(ret)
        return InflatePoint(self.consumed, bits, prime, self.produced, window.raw[: size.value])

    def _error(self, ret: int) -> Exception:
        message = (self._strm.msg or b"").decode(errors="replace")
        if ret == _Z_DATA_ERROR:
            return IntegrityError(f"compressed byte {self.consumed}: corrupt deflate data: {message}")
        if ret == _Z_MEM_ERROR:
            return MemoryError("zlib could not allocate its inflate state")
        return RuntimeError(f"zlib inflate call failed with {ret}: {message or 'no message'}")

    def close(self) -> None:
        if getattr(self, "_open", False):
            self._open = False
            self._lib.end(self._ref)

    def __enter__(self) -> Inflater:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


# --- the check a container makes before it takes on work ---------------------------------------------


def self_test() -> str:
    """Load both libraries and round-trip a state through each, as a transfer does across invocations:
    a SHA-256 saved and resumed, and an inflate stopped at a block boundary and resumed. What was loaded,
    or a ConfigError saying what failed."""
    import hashlib  # here, not at import: hashlib maps a libcrypto, and importing this module loads none

    data = b"fusion-extract self test: " * 40
    try:
        crypto, inflate = libcrypto(), inflate_library()
        first = Sha256()
        first.update(data[:333])
        resumed = Sha256(first.state())
        resumed.update(data[333:])
        if resumed.digest() != hashlib.sha256(data).digest():
            raise ConfigError(f"{crypto.path}: a resumed SHA-256 state gives a wrong digest")
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        compressed = compressor.compress(data[:500]) + compressor.flush(zlib.Z_FULL_FLUSH)
        compressed += compressor.compress(data[500:]) + compressor.flush()
        with Inflater() as head:
            before = b"".join(head.feed(compressed, stop=lambda: True))
            if head.stopped is None:
                raise ConfigError(f"{inflate.path}: inflate never stopped at a block boundary")
            point = InflatePoint.from_bytes(head.stopped.to_bytes())
        with Inflater(point) as tail:
            after = b"".join(tail.feed(compressed[point.consumed :]))
        if before + after != data or not tail.finished:
            raise ConfigError(f"{inflate.path}: an inflate resumed at a block boundary gives wrong output")
    except ConfigError:
        raise
    except Exception as exc:  # IntegrityError, RuntimeError...: the library misbehaves
        raise ConfigError(f"the native libraries fail their round trip: {type(exc).__name__}: {exc}") from exc
    return f"libcrypto {crypto.path} ({crypto.version}), libz {inflate.path} ({inflate.version.decode()})"
