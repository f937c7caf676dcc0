"""Run this unit's public checks on your own code:  python run_public_checks.py

The checks call your functions on the public cases (the hidden tests on Gradescope use other inputs
too) and compare the results with the instructor solution's values.
Options: -k TEXT runs only tests whose name contains TEXT; -v shows every case.
In a notebook, ``grader.check("name")`` (otter) runs the same checks on the notebook's functions.
"""

import argparse
import os
import sys
import time
import traceback
import types

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKS = os.path.join(HERE, "public_checks")


def _modules():
    for folder in (os.path.join(HERE, "src"), CHECKS):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    import probes
    import spec
    import wire

    return probes, spec, wire


def _cases():
    _, _, wire = _modules()
    with open(os.path.join(CHECKS, "cases.json"), encoding="utf-8") as fh:
        return wire.decode(fh.read())["cases"]


def _problems(case):
    probes, spec, _ = _modules()
    try:
        outputs = getattr(probes, case["probe"])(**case["args"])
    except NotImplementedError as exc:
        return [f"not written yet ({exc})"]
    except Exception:
        return ["raised an exception:\n" + traceback.format_exc(limit=-3)]
    problems = []
    for name, want in case["expect"].items():
        if name not in outputs:
            problems.append(f"no value for {name!r}")
            continue
        verdict = getattr(spec, want["compare"])(**want["params"])(outputs[name], want["reference"])
        if verdict:
            problems.append(f"{name}: {verdict}")
    return problems


def check(test, namespace=None):
    """Run the public cases of one test; returns "ok" or what went wrong (used by otter tests).

    namespace: a notebook's globals(); its functions are offered to the probes as the module
    ``submission``.
    """
    if namespace is not None:
        module = types.ModuleType("submission")
        module.__dict__.update(namespace)
        sys.modules["submission"] = module
    lines = []
    for case in _cases():
        if case["test"] == test:
            problems = _problems(case)
            if problems:
                lines.append(f"{case['case']}: " + "; ".join(problems))
    return "ok" if not lines else "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the public checks of this unit.")
    parser.add_argument("-k", default="", help="only tests whose name contains this text")
    parser.add_argument("-v", action="store_true", help="show passing cases too")
    args = parser.parse_args(argv)
    passed = failed = 0
    for case in _cases():
        if args.k not in case["test"]:
            continue
        label = f"{case['test']} / {case['case']}"
        started = time.perf_counter()
        problems = _problems(case)
        seconds = time.perf_counter() - started
        if problems:
            failed += 1
            print(f"FAIL  {label}  ({seconds:.2f} s)\n      " + "\n      ".join(problems))
        else:
            passed += 1
            if args.v:
                print(f"ok    {label}  ({seconds:.2f} s)")
    print(f"public checks: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
