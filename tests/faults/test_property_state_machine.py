"""Property: any interleaving of duplicate deliveries, crashes (an invocation whose remaining messages are
dropped) and retries converges to exactly one landing or one clear failure (hypothesis, derandomized)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusion_extract.chain.records import RunState
from tests.emulators.fusion import ExtractScenario
from tests.faults.bus import Bus, Faults, drive, start
from tests.faults.conftest import Expect, assert_end_state
from tests.steps.conftest import CLIENT_ID, CLIENT_SECRET, EXTRACT, MakeSteps

settings.register_profile(
    "faults",
    max_examples=6,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

shares = st.sampled_from([0.0, 0.3, 0.6])
topic_faults = st.builds(Faults, lose=shares, duplicate=shares, reorder=st.booleans())


@settings(settings.get_profile("faults"))
@given(
    poll=topic_faults,
    transfer=topic_faults,
    rerun=topic_faults,
    failed_jobs=st.integers(0, 3),
    seed=st.integers(0, 2**16),
)
def test_property_any_interleaving_converges_to_one_landing_or_one_clear_failure(
    make_steps: MakeSteps, poll: Faults, transfer: Faults, rerun: Faults, failed_jobs: int, seed: int
) -> None:
    # Given a run whose first `failed_jobs` jobs fail (three attempts allowed), and topics that lose
    # (a crash drops an invocation's remaining messages), duplicate and reorder messages
    steps = make_steps(
        STEP_OVERDUE_SECONDS="60",
        TRANSFER_BUDGET_SECONDS="20",
        RERUN_BACKOFF_SECONDS="0",
        FILE_RETRY_SECONDS="0",
    )
    assert steps.fusion is not None
    steps.fusion.reset(steps.clock)
    steps.fusion.add_client(CLIENT_ID, CLIENT_SECRET)
    extract = f"{EXTRACT}{seed}"
    steps.fusion.define_extract(extract, ExtractScenario(fail_first_jobs=failed_jobs, chunks=2))
    bus = Bus(steps, {"poll": poll, "transfer": transfer, "rerun": rerun}, seed=seed)

    # When the chain runs until the run is final
    final = drive(steps, start(steps, extract), bus)

    # Then it landed once (a job per attempt), or failed clearly once its three jobs failed
    if failed_jobs >= 3:
        assert_end_state(steps, final, Expect(RunState.FAILED, reason="ended ERROR", jobs=3))
    else:
        assert_end_state(steps, final, Expect(RunState.LANDED, jobs=failed_jobs + 1))
