"""Progress lines of long commands: one line when a unit starts and one per step, flushed at once."""

from __future__ import annotations

import time


def unit_started(verb: str, unit: str) -> float:
    """Print that ``verb`` (e.g. "building") starts for ``unit``; return the start time.

    Parameters
    ----------
    verb : str
        What happens to the unit, as a present participle.
    unit : str
        The unit's folder name.

    Returns
    -------
    float
        :func:`time.monotonic` at the start, for :func:`unit_done`.
    """
    print(f"{verb} {unit} ...", flush=True)
    return time.monotonic()


def step(text: str) -> None:
    """Print one step of the current unit (indented under its first line).

    Parameters
    ----------
    text : str
        What the step does.
    """
    print(f"  {text}", flush=True)


def unit_done(started: float, what: str) -> None:
    """Print how long the current unit took.

    Parameters
    ----------
    started : float
        The value :func:`unit_started` returned.
    what : str
        What was done, e.g. "built and self-graded".
    """
    print(f"  {what} in {time.monotonic() - started:.1f} s", flush=True)
