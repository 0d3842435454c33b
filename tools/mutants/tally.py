"""The figures of a `make mutants` run, per module: killed, survived, not reached, not yet checked.

Reads what mutmut keeps in `.local/mutants/mutants/` (a `.meta` file of exit codes per mutated module) for the
mutants whose patterns sample.py prints (on stdin), so a run stopped midway still reports what it checked:

    cd .local/mutants && ../mutmut/bin/python ../../tools/mutants/sample.py fusion_extract.chain.runs:8 \
      | ../mutmut/bin/python ../../tools/mutants/tally.py --list survived

`--list survived` names each survivor (`../mutmut/bin/mutmut show <name>` shows it).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from collections import Counter
from pathlib import Path

# mutmut's exit codes (mutmut/stats.py): the test run failed, passed, or found no test reaching the function.
STATUS = {1: "killed", 3: "killed", 0: "survived", 33: "no tests", 5: "no tests", None: "not checked"}
COLUMNS = ("killed", "survived", "no tests", "not checked", "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--list", action="append", default=[], help="name the mutants of this status")
    args = parser.parse_args()
    kept = sys.stdin.read().split()
    total: Counter[str] = Counter()
    print(f"{'module':44}" + "".join(f"{column:>13}" for column in COLUMNS))
    for meta in sorted(Path("mutants/src").rglob("*.py.meta")):
        results: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        found: Counter[str] = Counter()
        named: list[str] = []
        for name, code in sorted(results.items()):
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in kept):
                status = STATUS.get(code, "other")  # a timeout, a crash: see `mutmut results`
                found[status] += 1
                if status in args.list:
                    named.append(f"    {status}: {name}")
        if found:
            module = str(meta.relative_to("mutants/src")).removesuffix(".py.meta").replace("/", ".")
            print(f"{module:44}" + "".join(f"{found[column]:>13}" for column in COLUMNS))
            for line in named:
                print(line)
            total += found
    print(f"{'total':44}" + "".join(f"{total[column]:>13}" for column in COLUMNS))


if __name__ == "__main__":
    main()
