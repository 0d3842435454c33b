"""The chain harness (three functions under the real fdk runtime) for the process-kill scenarios."""

from tests.e2e.conftest import chain_supply, make_chain

__all__ = ["chain_supply", "make_chain"]
