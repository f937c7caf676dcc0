"""Run this unit's public checks on your own code:  python run_public_checks.py

The checks call your functions in src/ on the public cases (the hidden tests on Gradescope use
other inputs too) and compare the results with the instructor solution's values.
Options: -k TEXT runs only tests whose name contains TEXT; -v shows every case.
"""

import argparse
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKS = os.path.join(HERE, "public_checks")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the public checks of this unit.")
    parser.add_argument("-k", default="", help="only tests whose name contains this text")
    parser.add_argument("-v", action="store_true", help="show passing cases too")
    args = parser.parse_args(argv)
    sys.path[:0] = [CHECKS, os.path.join(HERE, "src")]
    import probes
    import spec
    import wire

    with open(os.path.join(CHECKS, "cases.json"), encoding="utf-8") as fh:
        table = wire.decode(fh.read())
    passed = failed = 0
    for case in table["cases"]:
        if args.k not in case["test"]:
            continue
        label = f"{case['test']} / {case['case']}"
        started = time.perf_counter()
        try:
            outputs = getattr(probes, case["probe"])(**case["args"])
            problems = []
            for name, want in case["expect"].items():
                compare = getattr(spec, want["compare"])(**want["params"])
                if name not in outputs:
                    problems.append(f"no value for {name!r}")
                    continue
                verdict = compare(outputs[name], want["reference"])
                if verdict:
                    problems.append(f"{name}: {verdict}")
        except NotImplementedError as exc:
            problems = [f"not written yet ({exc})"]
        except Exception:
            problems = ["raised an exception:\n" + traceback.format_exc(limit=-3)]
        seconds = time.perf_counter() - started
        if problems:
            failed += 1
            print(f"FAIL  {label}  ({seconds:.2f} s)\n      " + "\n      ".join(problems))
        else:
            passed += 1
            if args.v:
                print(f"ok    {label}  ({seconds:.2f} s)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
