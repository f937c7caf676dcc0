"""Penalty on the standard deviations that keeps every variance away from zero.

Maximum likelihood alone lets a component shrink onto a single example: its variance goes to zero
and the likelihood to infinity.  We add, for every standard deviation sigma,

    log(sigma) / (s * m**2) + 1 / (2 * s * m * sigma**2),

with mode m ("variance_penalty_mode") and spread s ("variance_penalty_spread").  The second term
grows without bound as sigma -> 0; the first grows slowly as sigma -> infinity.  Setting the
derivative 1 / (s m**2 sigma) - 1 / (s m sigma**3) to zero gives sigma**2 = m: the penalty is
smallest at sigma = sqrt(m).  A larger spread s makes the penalty weaker.

Examples
--------
>>> import numpy as np
>>> round(float(calc_penalty_stddev(np.ones((2, 3)), 1.0, 100.0)), 4)
0.03
>>> # for mode 4 the smallest penalty is at stddev 2
>>> [round(float(calc_penalty_stddev(np.full((1, 1), s), 4.0, 1.0)), 5) for s in (1.5, 2.0, 2.5)]
[0.0809, 0.07457, 0.07727]
"""

import autograd.numpy as ag_np


def calc_penalty_stddev(stddev_KD, variance_penalty_mode, variance_penalty_spread):
    """Penalty summed over all standard deviations (works on autograd boxes too).

    Parameters
    ----------
    stddev_KD : array-like, shape (K, D)
        Standard deviations, all positive.
    variance_penalty_mode : float
        m > 0: the variance at which each term is smallest.
    variance_penalty_spread : float
        s > 0: larger means a weaker penalty.

    Returns
    -------
    penalty : float
        sum_k sum_d [ log(stddev_kd) / (s m^2) + 1 / (2 s m stddev_kd^2) ].
    """
    m = variance_penalty_mode
    s = variance_penalty_spread
    return ag_np.sum(ag_np.log(stddev_KD)) / (s * m * m) + ag_np.sum(1.0 / ag_np.square(stddev_KD)) / (
        2.0 * s * m
    )
