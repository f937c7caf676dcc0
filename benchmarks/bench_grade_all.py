"""Throughput of ``gmmcourse grade-all`` on unit 3: submissions per minute with 1 and 2 jobs.

A class of N submissions (solution and untouched starter copies, alternating) is graded from a
fresh output folder once per job count, through the real command (a subprocess), with the unit's
autograder zip built into a temporary folder. Printed per run: wall time, submissions per minute,
the speed-up against one job, and memory: the peak of the summed resident memory of the whole
process tree (grade-all, its grading children and their sandboxed workers; sampled every 0.2 s
with psutil when it is installed) and the largest single process (getrusage of the children).
The load average is printed beside them: on a shared machine only ratios within one run mean much.

    .venv/bin/python benchmarks/bench_grade_all.py                 # 6 submissions, 1 and 2 jobs
    .venv/bin/python benchmarks/bench_grade_all.py --submissions 10 --jobs 1 2 4 --repeats 3

Each job count runs ``--repeats`` times from a fresh output folder; the fastest run is printed.
There is no ``--threads``: the sandboxed workers always run with one BLAS thread.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gmmcourse import paths  # noqa: E402
from gmmcourse.build import package, units  # noqa: E402

UNIT = "unit3_gmm_em_lbfgs"


def make_class(folder: Path, count: int) -> None:
    folder.mkdir()
    for n in range(count):
        source = paths.SOLUTIONS_DIR / UNIT / "src" if n % 2 == 0 else paths.STARTER_DIR / UNIT
        shutil.copytree(source, folder / f"student{n:03d}", ignore=shutil.ignore_patterns("__pycache__"))


def tree_rss_sampler(pid: int, peak: list[int], done: threading.Event) -> None:
    """Keep ``peak[0]`` at the largest summed RSS of ``pid`` and its descendants seen so far."""
    try:
        import psutil
    except ImportError:
        return
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return
    while not done.is_set():
        total = 0
        try:
            for proc in [root, *root.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            break
        peak[0] = max(peak[0], total)
        done.wait(0.2)


def run(zip_path: Path, klass: Path, out: Path, jobs: int) -> tuple[float, int, str]:
    """(wall seconds, peak tree RSS in bytes or 0, scores.csv text) of one grade-all run."""
    cmd = [
        sys.executable,
        "-m",
        "gmmcourse.cli",
        "grade-all",
        UNIT,
        str(klass),
        "--out",
        str(out),
        "--jobs",
        str(jobs),
        "--autograder",
        str(zip_path),
    ]
    peak, done = [0], threading.Event()
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = threading.Thread(target=tree_rss_sampler, args=(proc.pid, peak, done), daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    seconds = time.monotonic() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"grade-all failed ({proc.returncode}):\n{stdout[-2000:]}\n{stderr[-2000:]}")
    return seconds, peak[0], (out / "scores.csv").read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=6)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1, help="runs per job count (fastest kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grade-all-") as tmp:
        tmp = Path(tmp)
        zip_path = tmp / f"{UNIT}-autograder.zip"
        package.build_autograder_zip(units.unit_sources(UNIT), zip_path)
        make_class(tmp / "class", args.submissions)
        print(
            f"{UNIT}: {args.submissions} submissions (solution and starter copies), "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"
        )
        baseline, scores = None, None
        for jobs in args.jobs:
            runs = [run(zip_path, tmp / "class", tmp / f"out-{jobs}-{n}", jobs) for n in range(args.repeats)]
            seconds, peak, table = min(runs, key=lambda r: r[0])
            if scores is not None and table != scores:
                sys.exit(f"scores with {jobs} jobs differ from the first run")
            scores = table
            baseline = baseline or seconds
            largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
            tree = f"{peak / 2**20:.0f} MiB" if peak else "n/a (no psutil)"
            print(
                f"jobs {jobs}: {seconds:6.1f} s  {60 * args.submissions / seconds:5.2f} submissions/min  "
                f"speed-up {baseline / seconds:4.2f}x  peak memory of the tree {tree}, largest process "
                f"so far {largest / 2**20:.0f} MiB  (load average {os.getloadavg()[0]:.2f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
