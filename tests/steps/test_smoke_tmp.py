import time
from tests.steps.conftest import Steps

def test_smoke(steps: Steps) -> None:
    run = steps.until_transferring()
    n0 = len(steps.oci.served)
    t = time.monotonic()
    outs = steps.deliver("transfer")
    print("landed", time.monotonic() - t, len(steps.oci.served) - n0, steps.fusion_calls("."))
    for s in steps.oci.served[n0:]:
        print(s)
