"""Entry point of the Gradescope autograder zip (called by its ``run_autograder``).

    python -m gmmcourse.grading.gradescope --unit-dir DIR --submission DIR --results FILE

Always writes a valid results.json, even when grading itself fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gmmcourse.errors import UserError
from gmmcourse.grading.runner import format_table, grade, write_results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="run_autograder")
    parser.add_argument("--unit-dir", required=True, type=Path)
    parser.add_argument("--submission", required=True, type=Path)
    parser.add_argument("--results", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        results, _ = grade(args.unit_dir, args.submission)
    except UserError as exc:
        results = {"score": 0.0, "output": f"The autograder could not grade this submission: {exc}",
                   "visibility": "visible", "tests": []}
        write_results(results, args.results)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_results(results, args.results)
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
