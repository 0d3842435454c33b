"""Client CPU per Object Storage request: the bare SDK call, and the same call through our adapter.

    .venv/bin/python -m tests.bench.percall [--calls 300] [--rounds 3] [--environment 0] [--profile]

Starts the bench's OCI emulator in its own process (tests.bench.servers oci), so none of the server's CPU
counts, and times in this process (time.process_time, best of the rounds, per call) put_object of a tiny
body, get_object read whole, and rename_object: first on an SDK client built as its documentation shows
(no retry, no circuit breaker), then through OciClients and OciObjectStore as the transfer calls them
(put_bytes, get_bytes, promote with what the upload returned). `--environment N` first adds N variables to
the environment, as a function's configuration does (the SDK's HTTP session used to read the whole
environment for proxy settings twice per request). `--profile` prints cProfile's top entries of our puts.
Prints one line per call and the figures as JSON.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import oci

from fusion_extract.config import Settings
from fusion_extract.oci.clients import OciClients
from fusion_extract.oci.objects import OciObjectStore
from fusion_extract.ports import ObjectInfo
from tests.bench.servers import BUCKET, Child

BODY = b"id,amount\n1,2.50\n"


def per_call(run: Callable[[int], object], calls: int, rounds: int) -> float:
    """The least CPU-seconds per call over the rounds (each round `calls` calls, numbered from 0)."""
    best = float("inf")
    for round_ in range(rounds):
        started = time.process_time()
        for n in range(calls):
            run(round_ * calls + n)
        best = min(best, (time.process_time() - started) / calls)
    return best


def bare_client(served: dict[str, Any]) -> Any:
    config = oci.config.from_file(served["config_file"])
    return oci.object_storage.ObjectStorageClient(
        config,
        service_endpoint=served["endpoint"],
        retry_strategy=oci.retry.NoneRetryStrategy(),
        circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
    )


def our_store(served: dict[str, Any]) -> OciObjectStore:
    env = {
        "FUSION_BASE_URL": "https://fa-bench.fa.ocs.oraclecloud.com",
        "IDCS_URL": "https://idcs-bench.identity.oraclecloud.com",
        "FUSION_SCOPE": "urn:opc:resource:fusion:bench:saas-batch/",
        "CREDENTIALS_SECRET_ID": "ocid1.vaultsecret.oc1..bench",
        "OCI_AUTH": "config_file",
        "OCI_CONFIG_FILE": served["config_file"],
        "OCI_OBJECTSTORAGE_ENDPOINT": served["endpoint"],
        "BUCKET_NAME": BUCKET,
        "BUCKET_NAMESPACE": served["namespace"],
        **{f"{name.upper()}_TOPIC_ID": topic for name, topic in served["topics"].items()},
    }
    clients = OciClients(Settings.from_mapping(env))
    return OciObjectStore(clients.object_storage, clients.namespace, BUCKET)


def bare_calls(client: Any, namespace: str, calls: int, rounds: int) -> dict[str, float]:
    def put(n: int) -> object:
        return client.put_object(namespace, BUCKET, f"bare/put/{n}", BODY)

    def get(n: int) -> object:
        return client.get_object(namespace, BUCKET, f"bare/put/{n}").data.content

    def rename(n: int) -> object:
        details = oci.object_storage.models.RenameObjectDetails(
            source_name=f"bare/put/{n}", new_name=f"bare/renamed/{n}"
        )
        return client.rename_object(namespace, BUCKET, details)

    return {
        "put_object": per_call(put, calls, rounds),
        "get_object": per_call(get, calls, rounds),
        "rename_object": per_call(rename, calls, rounds),
    }


def our_calls(store: OciObjectStore, calls: int, rounds: int) -> dict[str, float]:
    staged: dict[int, ObjectInfo] = {}

    def put(n: int) -> object:
        staged[n] = store.put_whole(f"ours/put/{n}", BODY)
        return staged[n]

    def get(n: int) -> object:
        return store.get_bytes(f"ours/put/{n}")

    def promote(n: int) -> object:
        store.promote(f"ours/put/{n}", f"ours/promoted/{n}", staged[n])
        return None

    return {
        "put_object": per_call(put, calls, rounds),
        "get_object": per_call(get, calls, rounds),
        "rename_object": per_call(promote, calls, rounds),
    }


def profile_puts(store: OciObjectStore, calls: int) -> None:
    profiler = cProfile.Profile(time.process_time)  # CPU, not the wait for the server
    profiler.enable()
    for n in range(calls):
        store.put_whole(f"profiled/{n}", BODY)
    profiler.disable()
    pstats.Stats(profiler).sort_stats(os.environ.get("PERCALL_SORT", "tottime")).print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--environment", type=int, default=0)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    for n in range(args.environment):
        os.environ[f"BENCH_CONFIG_{n}"] = f"value-{n}"
    with tempfile.TemporaryDirectory(prefix="percall-") as workdir:
        server = Child("tests.bench.servers", "oci", str(Path(workdir)))
        try:
            served = server.ready
            store = our_store(served)
            figures = {
                "bare SDK": bare_calls(bare_client(served), served["namespace"], args.calls, args.rounds),
                "ours": our_calls(store, args.calls, args.rounds),
            }
            if args.profile:
                profile_puts(store, args.calls)
        finally:
            server.stop()
    for way, calls in figures.items():
        for call, seconds in calls.items():
            print(f"{way:9} {call:14} {seconds * 1e3:6.3f} ms CPU per call")
    milliseconds = {way: {k: round(v * 1e3, 3) for k, v in calls.items()} for way, calls in figures.items()}
    print(json.dumps({"calls": args.calls, "environment": args.environment, "ms_per_call": milliseconds}))


if __name__ == "__main__":
    main()
