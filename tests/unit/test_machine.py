"""The ledger's state machines, declared as data (chain/ledger/machine.py): the chain does what they allow."""

from enum import Enum

import pytest

from fusion_extract.chain.ledger.machine import MACHINES, RUN, UNIT, Event, IllegalMove, Machine, diagram
from fusion_extract.chain.ledger.records import FileState, RunState, UnitState

STATES: dict[str, type[Enum]] = {"run": RunState, "file": FileState, "unit": UnitState}


def _finals(machine: Machine) -> set:  # type: ignore[type-arg]
    return {target for _, _, target in machine} - {source for source, _, _ in machine}


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_machine_reaches_every_state_of_its_record_from_a_new_one(machine):
    # Given the machine's moves
    reached: set[object] = set()
    frontier: set[object] = {None}
    # When they are followed from a new record
    while frontier:
        frontier = {t for s, _, t in machine if s in frontier} - reached
        reached |= frontier
    # Then every state its records can hold is reached, and no other
    assert reached == set(STATES[machine.name])


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_machine_final_states_lead_nowhere(machine):
    # Given each state no move leaves
    for final in _finals(machine):
        # Then no event moves it, and asking for one names the machine and the move
        for event in Event:
            assert not machine.allows(final, event)
        with pytest.raises(IllegalMove, match=rf"{machine.name}: no move 'cancel' from {final.value}"):
            machine.after(final, Event.CANCEL)


def test_run_machine_ends_are_the_four_final_states_and_finishing_only_goes_on():
    # Given the run machine
    # Then its final states are exactly the run's final states
    assert _finals(RUN) == {state for state in RunState if state.final}
    # And a run whose finisher may have written _SUCCESS cannot fail, time out or be cancelled
    assert [event for event in Event if RUN.allows(RunState.FINISHING, event)] == [Event.FINISHED]
    # And every state before it can
    for state in (RunState.SUBMITTING, RunState.RUNNING, RunState.RERUN_PENDING, RunState.TRANSFERRING):
        assert {RUN.after(state, e) for e in (Event.FAIL, Event.TIME_OUT, Event.CANCEL)} == {
            RunState.FAILED,
            RunState.TIMED_OUT,
            RunState.CANCELLED,
        }


def test_machine_check_allows_staying_put_and_the_declared_moves_only():
    RUN.check(RunState.RUNNING, RunState.RUNNING)  # no error
    RUN.check(RunState.RUNNING, RunState.TRANSFERRING)
    with pytest.raises(IllegalMove, match="run: no move from RUNNING to LANDED"):
        RUN.check(RunState.RUNNING, RunState.LANDED)
    with pytest.raises(IllegalMove, match="unit: no move from PROMOTED to PENDING"):
        UNIT.check(UnitState.PROMOTED, UnitState.PENDING)


def test_diagram_draws_each_move_from_a_new_record_to_the_final_states():
    # Given a machine of three states, one of them final
    machine = Machine(
        "unit",
        {
            (None, Event.PLANNED): UnitState.PENDING,
            (UnitState.PENDING, Event.CLAIM): UnitState.WORKING,
            (UnitState.WORKING, Event.PAUSE): UnitState.PENDING,
            (UnitState.WORKING, Event.STAGED): UnitState.DONE,
        },
    )
    # When it is drawn for docs/states.md
    drawn = diagram(machine)
    # Then each move is an arrow named by its event, from [*] for a new record; the final state leads to [*]
    assert drawn.splitlines() == [
        "stateDiagram-v2",
        "    [*] --> PENDING: planned",
        "    PENDING --> WORKING: claim",
        "    WORKING --> PENDING: pause",
        "    WORKING --> DONE: staged",
        "    DONE --> [*]",
    ]


def test_machine_refuses_a_new_record_any_move_but_its_first_naming_it_new():
    # Given a run not yet recorded; When asked for a move only a recorded run has
    # Then the machine refuses it, naming the record as new
    with pytest.raises(IllegalMove, match=r"^run: no move 'succeeded' from \(new\)$"):
        RUN.after(None, Event.SUCCEEDED)
    with pytest.raises(IllegalMove, match=r"^run: no move from \(new\) to LANDED$"):
        RUN.check(None, RunState.LANDED)
