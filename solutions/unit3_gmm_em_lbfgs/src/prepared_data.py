"""Cache the centred data and its squares, so repeated likelihood evaluations skip that work.

This helper is complete: you may use it, but nothing requires you to.

Why centre?  The squared distance of one example to one component expands into three sums,

    sum_d p_kd (x_nd - mu_kd)**2 = sum_d p_kd x_nd**2 - 2 sum_d p_kd mu_kd x_nd + sum_d p_kd mu_kd**2,

where p_kd = 1 / stddev_kd**2.  The first two sums are matrix products over all examples at once, which
is far faster than building an (N, K, D) array.  But when x_nd and mu_kd are both far from zero and
close to each other, the three terms are large and almost cancel, and rounding errors survive the
subtraction.  Shifting every feature by the same constant c_d (here the column mean of the data)
leaves the distance unchanged and makes the three terms small, so far less precision is lost.

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
    xc_ND : np.ndarray, shape (N, D)
        x_ND - center_D.
    xcsq_ND : np.ndarray, shape (N, D)
        xc_ND ** 2.

    All arrays are C-contiguous (matrix products on them go straight to BLAS) and read-only.
    """

    def __init__(self, x_ND):
        x_ND = np.asarray(x_ND, dtype=np.float64)
        if x_ND.ndim != 2:
            raise ValueError(f"x_ND must be a 2-D array of shape (N, D), got shape {x_ND.shape}")
        N, D = x_ND.shape
        self.x_ND = x_ND.view()
        self.x_ND.flags.writeable = False
        self.center_D = x_ND.mean(axis=0) if N > 0 else np.zeros(D)
        self.xc_ND = x_ND - self.center_D
        self.xcsq_ND = np.square(self.xc_ND)
        for array in (self.center_D, self.xc_ND, self.xcsq_ND):
            array.flags.writeable = False

    @property
    def shape(self):
        """(N, D), like the shape of the wrapped array."""
        return self.x_ND.shape

    @classmethod
    def of(cls, x_ND):
        """Return ``x_ND`` itself if it is already prepared, else a new PreparedData for it."""
        return x_ND if isinstance(x_ND, cls) else cls(x_ND)
