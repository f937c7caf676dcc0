"""Cache the centred data and its squares, so repeated likelihood evaluations skip that work.

This helper is complete: you may use it, but nothing requires you to.

Why centre?  The squared distance of one example to one component expands into three sums,

    sum_d p_kd (x_nd - mu_kd)**2 = sum_d p_kd x_nd**2 - 2 sum_d p_kd mu_kd x_nd + sum_d p_kd mu_kd**2,

where p_kd = 1 / stddev_kd**2.  The first two sums are matrix products over all examples at once, which
is far faster than building an (N, K, D) array.  But when x_nd and mu_kd are both far from zero and
close to each other, the three terms are large and almost cancel, and rounding errors survive the
subtraction.  Shifting every feature by the same constant c_d (here the column mean of the data)
leaves the distance unchanged and makes the three terms small, so far less precision is lost.

Why keep the squares, the values and a column of ones side by side in one array?  With
``features_NF = [xcsq_ND, xc_ND, 1]`` the whole log density of every example under every component is
one matrix product ``W_KF @ features_NF.T``, W stacking the weights of the two sums and each
component's constant; one product with an inner dimension of 2D + 1 runs faster than two products
with an inner dimension of D plus a pass to add the constants.  The same holds for the M-step, where
``r_NK.T @ xcsq_xc_N2D`` gives the weighted sums of the squares and of the values at once.

Examples
--------
>>> import numpy as np
>>> np.set_printoptions(precision=4, suppress=True)
>>> data = PreparedData(np.array([[1.0, -1.0], [3.0, -1.0]]))
>>> data.center_D
array([ 2., -1.])
>>> data.xc_ND
array([[-1.,  0.],
       [ 1.,  0.]])
>>> data.xcsq_ND
array([[1., 0.],
       [1., 0.]])
>>> data.features_NF
array([[ 1.,  0., -1.,  0.,  1.],
       [ 1.,  0.,  1.,  0.,  1.]])
>>> PreparedData.of(data) is data
True
"""

import numpy as np


class PreparedData:
    """A data set with its centred values and their squares, computed once.

    Args
    ----
    x_ND : array-like, shape (N, D)
        Real-valued data, one example per row.

    Attributes
    ----------
    x_ND : np.ndarray, shape (N, D)
        The data as float64 (a read-only view; never modified).
    center_D : np.ndarray, shape (D,)
        Column means of x_ND (zeros when N = 0).
    features_NF : np.ndarray, shape (N, 2 D + 1)
        The squares of the centred data, the centred data, and ones: [xcsq_ND, xc_ND, 1]
        (C-contiguous).
    xcsq_xc_N2D : np.ndarray, shape (N, 2 D)
        The first 2 D columns of features_NF (a view).
    xc_ND : np.ndarray, shape (N, D)
        x_ND - center_D (a view into features_NF).
    xcsq_ND : np.ndarray, shape (N, D)
        xc_ND ** 2 (a view into features_NF).

    All arrays are read-only.  Their rows are contiguous, so matrix products on them go straight to
    BLAS.
    """

    def __init__(self, x_ND):
        x_ND = np.asarray(x_ND, dtype=np.float64)
        if x_ND.ndim != 2:
            raise ValueError(f"x_ND must be a 2-D array of shape (N, D), got shape {x_ND.shape}")
        N, D = x_ND.shape
        self.x_ND = x_ND.view()
        self.x_ND.flags.writeable = False
        self.center_D = x_ND.mean(axis=0) if N > 0 else np.zeros(D)
        features_NF = np.empty((N, 2 * D + 1))
        np.subtract(x_ND, self.center_D, out=features_NF[:, D:2 * D])
        np.square(features_NF[:, D:2 * D], out=features_NF[:, :D])
        features_NF[:, 2 * D] = 1.0
        for array in (self.center_D, features_NF):
            array.flags.writeable = False
        # views taken after the freeze, so they are read-only too
        self.features_NF = features_NF
        self.xcsq_xc_N2D = features_NF[:, :2 * D]
        self.xcsq_ND = features_NF[:, :D]
        self.xc_ND = features_NF[:, D:2 * D]

    @property
    def shape(self):
        """(N, D), like the shape of the wrapped array."""
        return self.x_ND.shape

    @classmethod
    def of(cls, x_ND):
        """Return ``x_ND`` itself if it is already prepared, else a new PreparedData for it."""
        return x_ND if isinstance(x_ND, cls) else cls(x_ND)
