"""Property: any interleaving of duplicate deliveries, crashes (an invocation whose remaining messages are
dropped), retries, cancels and damaged staged objects converges to exactly one landing, byte for byte, or one
clear ending with nothing in the run's folder (hypothesis, derandomized). Every state change on the way is
one the declared machines have: the ledger refuses any other."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusion_extract.chain.ledger.records import RunState
from tests.emulators.fusion import ExtractScenario
from tests.faults.bus import Bus, Faults, drive, invoke, start
from tests.faults.conftest import Expect, assert_end_state
from tests.steps.conftest import CLIENT_ID, CLIENT_SECRET, EXTRACT, MakeSteps, Steps

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


def chain_for(make_steps: MakeSteps, extract: str, scenario: ExtractScenario, budget: str) -> Steps:
    """Steps on a fresh Fusion defining `extract`, re-driving after a minute, with no backoffs."""
    steps = make_steps(
        STEP_OVERDUE_SECONDS="60",
        TRANSFER_BUDGET_SECONDS=budget,
        RERUN_BACKOFF_SECONDS="0",
        FILE_RETRY_SECONDS="0",
    )
    assert steps.fusion is not None
    steps.fusion.reset(steps.clock)
    steps.fusion.add_client(CLIENT_ID, CLIENT_SECRET)
    steps.fusion.define_extract(extract, scenario)
    return steps


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
    extract = f"{EXTRACT}{seed}"
    steps = chain_for(make_steps, extract, ExtractScenario(fail_first_jobs=failed_jobs, chunks=2), "20")
    bus = Bus(steps, {"poll": poll, "transfer": transfer, "rerun": rerun}, seed=seed)

    # When the chain runs until the run is final
    final = drive(steps, start(steps, extract), bus)

    # Then it landed once (a job per attempt), or failed clearly once its three jobs failed
    if failed_jobs >= 3:
        assert_end_state(steps, final, Expect(RunState.FAILED, reason="ended ERROR", jobs=3))
    else:
        assert_end_state(steps, final, Expect(RunState.LANDED, jobs=failed_jobs + 1))


def damage_staged(steps: Steps) -> bool:
    """The first object the run has staged, replaced by other bytes; whether there was one."""
    for name in steps.objects("_staging/"):
        data = steps.read(name)
        steps.deps.store.put_bytes(name, bytes([data[0] ^ 0xFF]) + data[1:] if data else b"x")
        return True
    return False


@settings(settings.get_profile("faults"))
@given(
    transfer=topic_faults,
    cancel_at=st.sampled_from([None, 3, 5, 7]),
    damage_at=st.sampled_from([None, 2, 4, 6]),
    seed=st.integers(0, 2**16),
)
def test_property_cancels_and_damaged_staging_end_each_run_landed_whole_or_final_with_an_empty_folder(
    make_steps: MakeSteps, transfer: Faults, cancel_at: int | None, damage_at: int | None, seed: int
) -> None:
    # Given a run of two archives whose transfer messages are lost, duplicated or reordered; an operator who
    # may cancel it at one delivery, and staged objects that may be damaged before another (a budget spent
    # at every chance, so that work waits in staging between invocations)
    extract = f"{EXTRACT}{seed}"
    steps = chain_for(make_steps, extract, ExtractScenario(chunks=2), "0")
    bus = Bus(steps, {"transfer": transfer}, seed=seed)
    run_id = start(steps, extract)

    damaged: list[int] = []

    def meanwhile(delivery: int) -> None:
        if delivery == cancel_at:
            invoke(steps, "submit", {"kind": "cancel", "run_id": run_id})
        if damage_at is not None and delivery >= damage_at and not damaged and damage_staged(steps):
            damaged.append(delivery)  # the first delivery from then on that finds something staged

    bus.meanwhile = meanwhile

    # When the chain runs until the run is final
    final = drive(steps, run_id, bus)

    # Then it landed, every object byte-equal to what Fusion produced; or it was cancelled, told once,
    # with nothing in its folder (the end state checks both, and that nothing is left staged)
    if final.state is RunState.CANCELLED:
        assert cancel_at is not None
        assert_end_state(steps, final, Expect(RunState.CANCELLED))
    else:
        assert_end_state(steps, final, Expect(RunState.LANDED))
