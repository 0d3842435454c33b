"""submit: start, rerun or re-land a run (schedules, fn invoke, the rerun topic)."""

import io
from typing import Any

from fusion_extract.chain.messages import parse_submit
from fusion_extract.chain.steps.submit import submit
from fusion_extract.function import serve


def handler(ctx: Any, data: io.BytesIO | None = None) -> Any:
    return serve(ctx, data, "submit", parse_submit, submit)
