"""What `make deadcode` (vulture) must not report: names used where it cannot look. Each says why it stays;
anything else it finds is removed or put to use."""
# ruff: noqa: B018  (each line names what it keeps, and does nothing else)

from oci._vendor.requests.sessions import Session

from fusion_extract import config
from fusion_extract.chain import alerts
from fusion_extract.chain.transfer import archive, archive_source, manifest
from fusion_extract.cli import main
from fusion_extract.oci import calls, clients
from fusion_extract.resumable import _ZngStream, _ZStream

# Called by frameworks and libraries, not by our code.
main.doctor  # typer commands, registered by their decorator
main.watch
main.main  # the console script (shared/pyproject.toml)
calls.BoundedRetry.add_circuit_breaker_callback  # the oci SDK's retry-strategy interface
calls.BoundedRetry.make_retrying_call
_ZStream.next_out  # zlib reads the ctypes stream's fields
_ZngStream.next_out
Session.verify  # set on the SDK's HTTP session once (clients.settings_from_environment); requests reads them
Session.trust_env

# Data that is declared, kept or read as a whole.
config.Settings.log_level  # LOG_LEVEL is declared with every key (README's table); function.py reads it first

# Public parts that only tests use today, kept on purpose.
alerts.read_alert  # the reader the alerts' text promises to scripts (chain/alerts.py)
archive_source.BucketArchives  # the second archive source: output written straight into a bucket
manifest.ManifestDisagreements.fatal
archive.MemberStream.hashed_beside  # which members take the hashing thread: the rule's tests read it
config.Settings.fusion_host
clients.OciClients.functions_invoke  # the invoke client of tests/integration (ops.py builds its own)
