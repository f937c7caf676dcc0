"""The ``gmmcourse`` command: one entry point, one subcommand per job.

    gmmcourse build [UNIT...]                 generate releases + zips, self-grade, print the table
    gmmcourse check [UNIT...]                 fail when generated files or references are stale
    gmmcourse refs [UNIT...]                  regenerate reference values from the solutions
    gmmcourse full-run UNIT [--budget full|small] [--threads N] [--out FILE] [--text-only]
                                              run the solution notebook, keep its outputs
    gmmcourse grade UNIT SUBMISSION [--results FILE]
    gmmcourse grade-all UNIT SUBMISSIONS --out DIR [--jobs N]   a whole class, N at a time
    gmmcourse data build-tops [--out DIR] [--fashion-mnist DIR]

A mistake the user can fix ends in one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gmmcourse import paths
from gmmcourse.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line (and exit 2) like every other user error."""

    def error(self, message):
        raise UserError(f"{self.prog}: {message} (see --help)")


def _cmd_build(args) -> int:
    from gmmcourse.build import pipeline, progress, units, verify

    rows = []
    for unit in paths.resolve_units(args.units):
        started = progress.unit_started("building", unit)
        pipeline.build_unit(unit)
        progress.step("self-grade: solution and untouched starter through the autograder zip")
        rows.append(verify.self_grade(units.unit_sources(unit)))
        progress.unit_done(started, "built and self-graded")
    print()
    print(verify.format_summary(rows))
    bad = [row["unit"] for row in rows if verify.self_grade_problems(row)]
    if bad:
        print(
            f"error: self-grading failed for {', '.join(bad)} (solution must earn full marks, "
            f"the untouched starter zero)",
            file=sys.stderr,
        )
        return 1
    return 0


def _cmd_check(args) -> int:
    from gmmcourse.build import progress, verify

    problems = []
    for unit in paths.resolve_units(args.units):
        started = progress.unit_started("checking", unit)
        found = verify.check_unit(unit)
        progress.unit_done(started, f"{len(found)} problem(s) found" if found else "up to date")
        problems.extend(found)
    for line in problems:
        print(line)
    if problems:
        print(f"error: {len(problems)} problem(s); generated files must match a fresh build", file=sys.stderr)
        return 1
    print("generated files, references and releases are up to date")
    return 0


def _cmd_refs(args) -> int:
    from gmmcourse.build import units
    from gmmcourse.grading import runner

    for unit in paths.resolve_units(args.units):
        print(f"recording references of {unit} (every case run on the solution) ...", flush=True)
        src = units.load(unit, references=False)
        out = runner.record_references(src.autograder, units.solution_submission(src), given_dir=src.src)
        print(f"  wrote {out.relative_to(paths.REPO_ROOT)}", flush=True)
    return 0


def _cmd_full_run(args) -> int:
    from gmmcourse.build import full_run

    (unit,) = paths.resolve_units([args.unit])
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
    out = Path(args.out) if args.out else None
    if args.text_only:
        print(f"wrote {full_run.refresh_text(unit, out=out)} (today's text, the outputs it had)")
        return 0
    print(f"running the solution notebook of {unit} at the {args.budget} budget ...", flush=True)
    out = full_run.run(unit, budget=args.budget, threads=args.threads, out=out)
    print(f"wrote {out}")
    return 0


def _cmd_grade(args) -> int:
    from gmmcourse.build.package import grade_with_zip
    from gmmcourse.grading import layers, runner

    (unit,) = paths.resolve_units([args.unit])
    zip_path = paths.DIST_DIR / f"{unit}-autograder.zip"
    if not zip_path.is_file():
        raise UserError(f"{zip_path} does not exist; run `gmmcourse build {unit}` first")
    submission = Path(args.submission)
    if not submission.exists():
        raise UserError(f"submission not found: {submission}")
    print(layers.describe(layers.detect()), flush=True)
    results = grade_with_zip(zip_path, submission)
    print(runner.format_table(results))
    if args.results:
        runner.write_results(results, Path(args.results))
        print(f"wrote {args.results}")
    return 0


def _cmd_grade_all(args) -> int:
    from gmmcourse import grade_all

    return grade_all.grade_all(
        args.unit,
        Path(args.submissions),
        Path(args.out),
        jobs=args.jobs,
        autograder=Path(args.autograder) if args.autograder else None,
    )


def _cmd_build_tops(args) -> int:
    from gmmcourse import data

    return data.cli_build_tops(args.out, args.fashion_mnist)


_UNIT_COMMANDS = (
    ("build", "build releases and autograder zips, then self-grade", _cmd_build),
    ("check", "fail when committed generated files differ from a fresh build", _cmd_check),
    ("refs", "regenerate reference values from the solutions", _cmd_refs),
)


def _add_unit_commands(sub) -> None:
    """Add the subcommands that take only unit names: ``build``, ``check`` and ``refs``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subcommands of ``gmmcourse``.
    """
    for name, help_text, func in _UNIT_COMMANDS:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("units", nargs="*", metavar="UNIT")
        p.set_defaults(func=func)


def _add_full_run_command(sub) -> None:
    """Add ``full-run UNIT [--budget full|small] [--threads N] [--out FILE] [--text-only]``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subcommands of ``gmmcourse``.
    """
    p = sub.add_parser(
        "full-run",
        help="run a solution notebook in a kernel and keep its outputs (solutions/UNIT/full_run/)",
    )
    p.add_argument("unit", metavar="UNIT")
    p.add_argument("--budget", choices=("full", "small"), default="full", help="GMMCOURSE_BUDGET")
    p.add_argument("--threads", metavar="N", type=int, help="BLAS threads (default: one per core)")
    p.add_argument("--out", metavar="FILE", help="write here (default: solutions/UNIT/full_run/UNIT.ipynb)")
    p.add_argument(
        "--text-only",
        action="store_true",
        help="do not run: put today's markdown into the copy, whose code and src/ must be unchanged",
    )
    p.set_defaults(func=_cmd_full_run)


def _add_grade_command(sub) -> None:
    """Add ``grade UNIT SUBMISSION [--results FILE]``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subcommands of ``gmmcourse``.
    """
    p = sub.add_parser("grade", help="grade one submission exactly as the Gradescope zip would")
    p.add_argument("unit", metavar="UNIT")
    p.add_argument("submission", metavar="SUBMISSION", help="a file, a folder or a zip")
    p.add_argument("--results", metavar="FILE", help="write Gradescope results.json here")
    p.set_defaults(func=_cmd_grade)


def _add_grade_all_command(sub) -> None:
    """Add ``grade-all UNIT SUBMISSIONS --out DIR [--jobs N] [--autograder ZIP]``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subcommands of ``gmmcourse``.
    """
    p = sub.add_parser("grade-all", help="grade a whole class (a folder or a Gradescope export zip)")
    p.add_argument("unit", metavar="UNIT")
    p.add_argument(
        "submissions",
        metavar="SUBMISSIONS",
        help="a folder with one file, folder or zip per submission, or a Gradescope export zip",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        required=True,
        help="scores.csv, histogram.png and results/ go here; a re-run grades only what changed",
    )
    p.add_argument(
        "--jobs",
        metavar="N",
        type=int,
        default=None,
        help="gradings at a time (default: the number of cores)",
    )
    p.add_argument(
        "--autograder",
        metavar="ZIP",
        help="grade with this autograder zip (default: dist/UNIT-autograder.zip)",
    )
    p.set_defaults(func=_cmd_grade_all)


def _add_data_command(sub) -> None:
    """Add ``data`` and its subcommand ``build-tops [--out DIR] [--fashion-mnist DIR]``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subcommands of ``gmmcourse``.
    """
    p = sub.add_parser("data", help="data tools")
    data_sub = p.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    q = data_sub.add_parser("build-tops", help="build the tops-20x20flattened x CSVs from FashionMNIST")
    q.add_argument("--out", metavar="DIR", help="output folder (default: data/tops)")
    q.add_argument("--fashion-mnist", metavar="DIR", help="folder with the FashionMNIST idx files")
    q.set_defaults(func=_cmd_build_tops)


def make_parser() -> argparse.ArgumentParser:
    """Return the parser of the ``gmmcourse`` command and its subcommands.

    Returns
    -------
    argparse.ArgumentParser
        A parser whose parsed arguments carry ``func``, the function that runs the subcommand.
    """
    parser = _Parser(prog="gmmcourse", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_unit_commands(sub)
    _add_full_run_command(sub)
    _add_grade_command(sub)
    _add_grade_all_command(sub)
    _add_data_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``gmmcourse`` command; return its exit status (2 for a user error)."""
    try:
        args = make_parser().parse_args(argv)
        return args.func(args)
    except UserError as exc:
        print(f"gmmcourse: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gmmcourse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
