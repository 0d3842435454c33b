"""A local Oracle Fusion for tests and the demo: the Batch Processing API (saas-batch) and the identity
domain's token endpoint, each a stateful HTTPS server on 127.0.0.1 that real `requests` code talks to.

    from tests.clocks import ManualClock
    from tests.emulators.fusion import ExtractScenario, FusionEmulator

    clock = ManualClock()
    with FusionEmulator(clock=clock, workdir=tmp_path) as fusion:  # clock optional: real time by default
        fusion.add_client("client-id", "client-secret", username=None, password=None, token_lifetime=3600)
        fusion.define_extract("Sales", ExtractScenario(chunks=3, rows_per_chunk=100))
        fusion.base_url, fusion.idcs_url, fusion.ca_path, fusion.scope   # what a client is configured with
        requests.post(f"{fusion.idcs_url}/oauth2/v1/token", ..., verify=fusion.ca_path)   # and so on
        clock.advance(60)         # jobs progress on the emulator clock: tests never sleep
        fusion.jobs, fusion.job(job_id).status, fusion.requests   # inspect (requests: every one served)
        fusion.fail_next(r"/outputFiles$", 429, count=2, retry_after=3)   # one-off faults, any path

Standalone (the demo and `make emulator`): `python -m tests.emulators.fusion --help`.

Behaviour (as Oracle documents it; where Oracle documents nothing, the choice is ours and stated):
- IDCS `POST /oauth2/v1/token`: form body, HTTP Basic client authentication, grants client_credentials
  and password (clients given a user), scope must equal `fusion.scope`. RFC 6749 errors: invalid_client
  401; invalid_request, unsupported_grant_type, invalid_scope, unauthorized_client, invalid_grant 400.
  Tokens expire by the emulator clock after the client's `token_lifetime`.
- Every /api/saas-batch/ call needs `Authorization: Bearer <valid token>`, else 401. Errors are JSON
  `{"type", "title", "status", "detail"}`.
- `POST .../jobscheduler/v1/jobRequests` validates the body (400 names the problem), answers 202 with an
  absolute Location. The job passes ENQUEUED, RUNNING, the scenario's pass-through statuses, then its
  outcome; an unknown extract name ends ERROR. `GET .../jobRequests/{id}` has the documented shape.
- Lists page with `limit`/`offset` (`items`, `count`, `hasMore`, `limit`, `offset`, `totalItems`):
  jobs oldest first (limit 25 by default, at most 500); outputFiles at most `page_size` per page.
- outputFiles before the job succeeded: 409 (an empty list would read as "nothing changed").
- Output: one ZIP per chunk named `<essId>_S_<extract>_<view>_<epochms>_<YYYYMMDD_HHMMSS.micro>_<n>.zip`
  (essId = job id + 9) holding `<view>_<n>.csv|json`; the last also holds `<view>_metadata.json`
  (`extract`, `view`, `format`, `files[{name, rows}]`, `totalRows`); then the manifest
  `MANIFEST_EXTRACT_<ts>-SCHEDULE_<id>_REQUEST_<id>_<essId>.mf` (plain text). No files, no manifest,
  when the scenario has zero_files. Data come from a seed, streamed: no size costs memory or disk.
- `.../content` may redirect (scenario `redirect_downloads`): once on the same host, to
  `https://localhost:<port>/storage/<job>/<name>` (served without a token), or for ever.
- `.../content` serves `Range` (`bytes=a-b`, `bytes=a-`, `bytes=-n`, Oracle's `a-b/size`) with 206 and
  Content-Range, 416 when unsatisfiable.
"""

from tests.emulators.fusion.emulator import FusionEmulator
from tests.emulators.fusion.scenario import BadLink, ExtractScenario, Hostile, Redirect
from tests.emulators.loopback import ServedRequest

__all__ = ["BadLink", "ExtractScenario", "FusionEmulator", "Hostile", "Redirect", "ServedRequest"]
