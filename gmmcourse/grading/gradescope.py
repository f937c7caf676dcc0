"""Entry point of the Gradescope autograder zip (called by its ``run_autograder``).

    python -m gmmcourse.grading.gradescope --unit-dir DIR --submission DIR --results FILE

Always writes a valid results.json, whatever goes wrong inside the grader, and prints (to the
instructor-visible log) which sandbox layers were active.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from gmmcourse.errors import UserError
from gmmcourse.grading.layers import describe, detect
from gmmcourse.grading.runner import format_table, grade, write_results


def failure_results(message: str) -> dict:
    """Return a valid results.json for a grading that could not run (score 0, the reason shown)."""
    return {
        "score": 0.0,
        "output": message,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [],
    }


def main(argv=None) -> int:
    """Grade the submission and write results.json, whatever happens; return the exit status."""
    parser = argparse.ArgumentParser(prog="run_autograder")
    parser.add_argument("--unit-dir", required=True, type=Path)
    parser.add_argument("--submission", required=True, type=Path)
    parser.add_argument("--results", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        print(describe(detect()), flush=True)
        results, _ = grade(args.unit_dir, args.submission)
    except UserError as exc:
        write_results(failure_results(f"The autograder could not grade this submission: {exc}"), args.results)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BaseException:  # noqa: BLE001 - a grader bug must still leave a valid results.json
        write_results(
            failure_results(
                "The autograder failed on this submission (a problem on our side; "
                "your instructor can see the details)."
            ),
            args.results,
        )
        traceback.print_exc()
        return 1
    write_results(results, args.results)
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
