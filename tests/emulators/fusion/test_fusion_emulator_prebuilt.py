"""A prebuilt ZIP served from disk (ExtractScenario.prebuilt_zip): exact bytes, digest and ranges."""

import hashlib

from tests.emulators.fusion.prebuilt import PrebuiltFile

DATA = bytes(range(256)) * 9000  # 2.3 MB: more than one read block


def test_prebuilt_file_digest_is_the_files_size_and_sha256(tmp_path):
    # Given a file on disk served as an output
    path = tmp_path / "archive.zip"
    path.write_bytes(DATA)
    served = PrebuiltFile("44055_S_Bench_invoices_1.zip", path)

    # When its digest is asked for
    digest = served.digest()

    # Then it is the file's own
    assert (digest.size, digest.sha256) == (len(DATA), hashlib.sha256(DATA).hexdigest())


def test_prebuilt_file_serves_any_byte_range_exactly(tmp_path):
    path = tmp_path / "archive.zip"
    path.write_bytes(DATA)
    served = PrebuiltFile("a.zip", path)

    assert b"".join(served.read(0, len(DATA))) == DATA
    assert b"".join(served.read(1_000_000, 1_500_001)) == DATA[1_000_000:1_500_001]
    assert b"".join(served.read(len(DATA) - 5, len(DATA))) == DATA[-5:]
