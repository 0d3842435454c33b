"""Test-wide settings. The OCI SDK's default retries and its process-wide circuit breaker are turned off
before anything imports `oci`, so one error-path test cannot slow down or break another.

Emulators come from session-wide pools (tests.emulators.pool): each test borrows one and resets it.
"""

import functools
import os
from collections.abc import Iterator

import pytest

os.environ["OCI_SDK_DEFAULT_RETRY_ENABLED"] = "false"
os.environ["OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED"] = "false"

import oci.signer

from tests.emulators import pool

# The SDK parses and re-validates a PEM private key for every signer it builds (about 40 ms for an RSA
# key, far more on a loaded machine), and the suite builds hundreds from the few keys the emulators
# lend. The same PEM always gives the same immutable key, so each is parsed once; a key that does not
# parse still raises every time (errors are not cached), and signing itself is untouched.
oci.signer.load_private_key = functools.lru_cache(maxsize=64)(oci.signer.load_private_key)


@pytest.fixture(scope="session", autouse=True)
def _emulator_pools() -> Iterator[None]:
    yield
    pool.close_all()
