"""What every func.py shares: parse the body, bind the log context, run one step, map errors.

Every function also answers the messages that touch no run (chain/messages.py): a preflight, which
exercises the function's grants (chain/steps/preflight.py), and a preflight's probe, which it ignores.

fdk keeps only 200, 502 and 504 (anything else becomes 200). A step that could not do its work answers
502, the platform's "function failed", with the error's message as the body, which names the problem;
the error is logged once, as one JSON line carrying the run it concerned. Expected answers ("already
running", "stale message", "deferred") are successes with a JSON outcome.
"""

from __future__ import annotations

import gc
import io
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from fusion_extract import logging as jsonlog
from fusion_extract.chain.messages import CheckMessage, PreflightRequest, Probe, parse_check
from fusion_extract.chain.steps.preflight import ignore, preflight
from fusion_extract.errors import FusionExtractError

if TYPE_CHECKING:
    from fusion_extract.chain.deps import Deps
    from fusion_extract.chain.outcomes import Outcome

log = logging.getLogger("fusion_extract.function")

M = TypeVar("M")
Step = Callable[[M, "Deps"], "Outcome"]
FAILED = 502


def serve(
    ctx: Any,
    data: io.BytesIO | None,
    name: str,
    parse: Callable[[bytes], M],
    step: Step[M],
) -> Any:
    env = ctx.Config()
    with _uncollected():
        from fdk import response  # the runtime's own; importing it reconfigures logging

        jsonlog.configure(env.get("LOG_LEVEL", "INFO"))
        from fusion_extract.runtime import runtime_for  # after configure: the SDK logs as it is imported

    headers = ctx.Headers() or {}
    json_type = {"Content-Type": "application/json"}
    message_id = _header(headers, "x-oci-ns-messageid")
    with jsonlog.invocation(function=name, call_id=ctx.CallID(), message_id=message_id):
        runtime = None
        try:
            runtime = runtime_for(env)
            raw = data.getvalue() if data is not None else b""
            message: M | CheckMessage = parse_check(raw) or parse(raw)
            # Every later line names the message's kind and the run it names (the step adds what it learns).
            jsonlog.about(step=type(message).__name__.removesuffix("Request").lower(), **_named(message))
            if isinstance(message, PreflightRequest):
                outcome = preflight(name, runtime)
            elif isinstance(message, Probe):
                outcome = ignore(message)
            else:
                outcome = step(message, runtime)
        except Exception as exc:
            failure = str(exc) if isinstance(exc, FusionExtractError) else f"{type(exc).__name__}: {exc}"
            with jsonlog.bind(**jsonlog.context_of(exc)):
                log.error("step failed", extra={"error_type": type(exc).__name__, "reason": failure[:2000]})
            body = json.dumps({"error": type(exc).__name__, "message": failure[:2000]})
            return response.Response(ctx, response_data=body, headers=json_type, status_code=FAILED)
        finally:
            if runtime is not None and "metrics" in vars(runtime):  # built: something was recorded
                runtime.metrics.flush()  # never raises
        answer = outcome.to_json()
        log.info("step done", extra={"outcome": answer["outcome"]})
        return response.Response(ctx, response_data=json.dumps(answer), headers=json_type)


@contextmanager
def _uncollected() -> Iterator[None]:
    """The first call's imports (the runtime, through it the OCI SDK: some 60,000 objects that live as long
    as the container) with the cyclic garbage collector paused, then frozen out of its reach. Collecting
    while they are made walks them again and again: a tenth of a cold instance's start-up CPU. Frozen,
    no later collection walks them either. Later calls import nothing: nothing is paused or frozen."""
    if "fusion_extract.runtime" in sys.modules:
        yield
        return
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def _named(message: object) -> dict[str, Any]:
    """The run, extract and job a message names (those of them it has)."""
    request = getattr(message, "request", None)  # a run request's ExtractRequest
    named = {key: getattr(message, key, None) for key in ("run_id", "extract", "job_id")}
    named["extract"] = named["extract"] or getattr(request, "extract", None)
    return {key: value for key, value in named.items() if isinstance(value, str)}


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name)
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None else str(value)
