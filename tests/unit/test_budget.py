"""An invocation's budget (chain/budget.py): when it is spent, and whether more work still fits in it."""

from fusion_extract.chain.budget import Budget
from tests.clocks import ManualClock


def test_budget_is_spent_once_its_seconds_have_passed():
    # Given a budget of 240 s begun now
    clock = ManualClock()
    budget = Budget(clock, 240)

    # When time passes to just before its end, then to its end
    clock.advance(239.5)
    before = budget.spent()
    clock.advance(0.5)

    # Then it is spent at its end, not before
    assert (before, budget.spent(), budget.used()) == (False, True, 240.0)


def test_budget_fits_what_ends_within_it_and_no_more():
    # Given a poll budget of 60 s, 20 s of it used
    clock = ManualClock()
    budget = Budget(clock, 60)
    clock.advance(20)

    # When waits of 40 s and of a moment more are asked about
    # Then the first ends within it; the second does not
    assert budget.fits(40)
    assert not budget.fits(40.001)
