"""Softplus: a smooth map from any real number to a positive one, and its inverse.

L-BFGS searches over unconstrained real vectors, but standard deviations must be positive.  We
optimize an unconstrained u instead and set stddev = softplus(u) = log(1 + exp(u)).  For large u,
softplus(u) is about u; for very negative u it is about exp(u), tiny but positive.

Both functions are written with ``autograd.numpy``, so gradients flow through them, and both avoid
overflow: the forward map never evaluates exp of a large positive number, and the inverse keeps full
precision for tiny inputs (where exp(s) - 1 would cancel).

Examples
--------
>>> import numpy as np
>>> np.set_printoptions(precision=4, suppress=False)
>>> u = np.array([-800.0, -30.0, 0.0, 30.0, 800.0])
>>> softplus(u)
array([0.0000e+00, 9.3576e-14, 6.9315e-01, 3.0000e+01, 8.0000e+02])
>>> inverse_softplus(np.array([1e-30, 0.5, 800.0]))
array([-6.9078e+01, -4.3275e-01,  8.0000e+02])
"""

import autograd.numpy as ag_np


def softplus(u):
    """Forward map log(1 + exp(u)), elementwise.

    Parameters
    ----------
    u : array-like, any shape
        Unconstrained real values.

    Returns
    -------
    s : array, same shape
        Positive values (0.0 only once exp(u) underflows, for u below about -745).
    """
    ### BEGIN SOLUTION
    # log(exp(0) + exp(u)) with the larger term factored out inside logaddexp
    return ag_np.logaddexp(0.0, u)
    ### END SOLUTION


def inverse_softplus(s):
    """Inverse map log(exp(s) - 1), elementwise, for s > 0.

    Parameters
    ----------
    s : array-like, any shape
        Positive values.

    Returns
    -------
    u : array, same shape
        Real values with softplus(u) = s (to rounding).
    """
    ### BEGIN SOLUTION
    # log(exp(s) - 1) = s + log(1 - exp(-s)); expm1 keeps tiny s accurate, large s never overflows
    return s + ag_np.log(-ag_np.expm1(-s))
    ### END SOLUTION
