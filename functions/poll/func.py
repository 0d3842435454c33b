"""poll: follow a job one bounded step at a time, or sweep every run whose next step is overdue."""

import io
from typing import Any

from fusion_extract.chain.messages import parse_poll
from fusion_extract.chain.steps.poll import poll
from fusion_extract.function import serve


def handler(ctx: Any, data: io.BytesIO | None = None) -> Any:
    return serve(ctx, data, "poll", parse_poll, poll)
