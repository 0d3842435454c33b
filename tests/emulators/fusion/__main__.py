"""Run the Fusion emulator in the foreground until SIGINT or SIGTERM.

    .venv/bin/python -m tests.emulators.fusion --extract Sales --chunks 3 --rows-per-chunk 1000

Prints one JSON line on stdout once both servers listen: base_url, idcs_url, ca_path, scope,
client_id, client_secret, username, password, extracts. Jobs run on real time.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from tests.emulators.fusion.emulator import FusionEmulator
from tests.emulators.fusion.scenario import ExtractScenario


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators.fusion", description=__doc__)
    parser.add_argument("--workdir", type=Path, help="where the TLS files go (default: a temporary folder)")
    parser.add_argument("--port", type=int, default=0, help="Fusion port (default: any free one)")
    parser.add_argument(
        "--idcs-port", type=int, default=0, help="identity domain port (default: any free one)"
    )
    parser.add_argument("--client-id", default="emulator-client")
    parser.add_argument("--client-secret", default="emulator-secret")
    parser.add_argument("--username", help="also allow the password grant, as this user")
    parser.add_argument("--password")
    parser.add_argument("--token-lifetime", type=int, default=3600)
    parser.add_argument("--extract", action="append", help="an extract name (repeatable; default: Sales)")
    parser.add_argument("--chunks", type=int, default=2)
    parser.add_argument("--rows-per-chunk", type=int, default=1000)
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    parser.add_argument("--view", default="carriers")
    parser.add_argument("--compress-level", type=int, default=6)
    parser.add_argument("--seconds-enqueued", type=float, default=1.0)
    parser.add_argument("--seconds-running", type=float, default=4.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    options = _arguments(argv)
    try:
        scenario = ExtractScenario(
            chunks=options.chunks,
            rows_per_chunk=options.rows_per_chunk,
            format=options.format,
            view=options.view,
            compress_level=options.compress_level,
            seconds_enqueued=options.seconds_enqueued,
            seconds_running=options.seconds_running,
        )
    except ValueError as invalid:
        sys.exit(f"error: {invalid}")
    # Block the stop signals before the server threads start, so only sigwait below receives them.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    fusion = FusionEmulator(workdir=options.workdir, port=options.port, idcs_port=options.idcs_port)
    with fusion:
        fusion.add_client(
            options.client_id,
            options.client_secret,
            options.username,
            options.password,
            options.token_lifetime,
        )
        extracts = options.extract or ["Sales"]
        for name in extracts:
            fusion.define_extract(name, scenario)
        endpoints = {
            "base_url": fusion.base_url,
            "idcs_url": fusion.idcs_url,
            "ca_path": str(fusion.ca_path),
            "scope": fusion.scope,
            "client_id": options.client_id,
            "client_secret": options.client_secret,
            "username": options.username,
            "password": options.password,
            "extracts": extracts,
        }
        print(json.dumps(endpoints), flush=True)
        signal.sigwait(stop_signals)
    print("fusion emulator stopped", file=sys.stderr)


if __name__ == "__main__":
    main()
