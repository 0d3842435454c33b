"""The mutant names `make mutants` runs: a deterministic sample, so that a run fits an afternoon on 2 cores.

mutmut numbers each function's mutants 1, 2, 3...; this prints one fnmatch pattern per kept number: every
`every`-th of each function in the given modules (1, 1 + every, ...), so the same mutants run every time.
A module may carry its own rate, `fusion_extract.chain.runs:4`; the others take `--every`.
"""

from __future__ import annotations

import argparse

LONGEST_FUNCTION = 400  # more mutants than any function of these modules has


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--every", type=int, default=1, help="keep one mutant of this many (1: all)")
    parser.add_argument(
        "modules", nargs="+", help="dotted modules, e.g. fusion_extract.chain.policy or ...policy:4"
    )
    args = parser.parse_args()
    for spec in args.modules:
        module, _, own = spec.partition(":")
        every = int(own) if own else args.every
        for number in range(1, LONGEST_FUNCTION, every):
            print(f"{module}.*__mutmut_{number}")


if __name__ == "__main__":
    main()
