"""Log-softmax: a map from any real K-vector to log mixture weights, and an inverse.

Mixture weights must be non-negative and sum to one.  L-BFGS instead optimizes an unconstrained
vector u_K and we set log_pi_K = log_softmax(u_K) = u_K - logsumexp(u_K).  Adding the same constant
to every u_k changes nothing, so the inverse picks one representative: the u_K whose logsumexp is 0,
which is log_pi_K itself once it is normalized.

Examples
--------
>>> import numpy as np
>>> np.set_printoptions(precision=4, suppress=False)
>>> log_softmax(np.array([0.0, 0.0, np.log(2.0)]))
array([-1.3863, -1.3863, -0.6931])
>>> log_softmax(np.array([1000.0, 0.0]))  # no overflow
array([    0., -1000.])
>>> inverse_log_softmax(np.log(np.array([0.25, 0.25, 0.5])))
array([-1.3863, -1.3863, -0.6931])
"""

from autograd.scipy.special import logsumexp


def log_softmax(u_K):
    """Forward map u_K - logsumexp(u_K).

    Parameters
    ----------
    u_K : array-like, shape (K,)
        Unconstrained real values.

    Returns
    -------
    log_pi_K : array, shape (K,)
        Log weights; logsumexp(log_pi_K) = 0.
    """
    ### BEGIN SOLUTION
    return u_K - logsumexp(u_K)
    ### END SOLUTION


def inverse_log_softmax(log_pi_K):
    """One inverse of log_softmax: the representative with logsumexp 0.

    Parameters
    ----------
    log_pi_K : array-like, shape (K,)
        Log weights (a -inf entry maps to -inf).

    Returns
    -------
    u_K : array, shape (K,)
        Values with log_softmax(u_K) = log_pi_K; re-normalized if log_pi_K was not exactly.
    """
    ### BEGIN SOLUTION
    return log_pi_K - logsumexp(log_pi_K)
    ### END SOLUTION
