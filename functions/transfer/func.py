"""transfer: land one output file of a run, and finish the run when its last file landed."""

import io
from typing import Any

from fusion_extract.chain.messages import parse_transfer
from fusion_extract.chain.steps.transfer import transfer
from fusion_extract.function import serve


def handler(ctx: Any, data: io.BytesIO | None = None) -> Any:
    return serve(ctx, data, "transfer", parse_transfer, transfer)
