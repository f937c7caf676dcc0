"""One step of the Adam optimizer (Kingma & Ba, 2015) on a dict of parameter arrays.

For every parameter array theta with gradient g of the loss being *minimised*, at step t = 1, 2, ...::

    m = beta1 * m + (1 - beta1) * g            v = beta2 * v + (1 - beta2) * g**2
    m_hat = m / (1 - beta1**t)                 v_hat = v / (1 - beta2**t)
    theta = theta - lr * m_hat / (sqrt(v_hat) + eps)

Examples
--------
>>> import numpy as np
>>> params, m, v = adam_step({"w": np.array([1.0])}, {"w": np.array([0.5])},
...                          {"w": np.zeros(1)}, {"w": np.zeros(1)}, t=1, lr=0.1)
>>> print(np.round(params["w"], 6), m["w"], v["w"])
[0.9] [0.05] [0.00025]
"""

import numpy as np


def adam_step(params, grads, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam update of every parameter array (new dicts are returned, the inputs are not changed).

    Parameters
    ----------
    params : dict of str to ndarray
        Current parameters.
    grads : dict of str to ndarray
        Gradient of the loss to minimise, same keys and shapes as params.
    m, v : dict of str to ndarray
        First and second moment estimates (zeros before the first step), same keys and shapes.
    t : int >= 1
        Number of this step (1 for the first step), used for the bias corrections.
    lr, beta1, beta2, eps : float
        Step size, moment decay rates and the constant added to the root of the second moment.

    Returns
    -------
    new_params, new_m, new_v : dict of str to ndarray
        Updated parameters and moment estimates, same keys, shapes and dtypes.

    Raises
    ------
    ValueError
        If t < 1 or the keys of params, grads, m and v differ.
    """
    ### BEGIN SOLUTION
    if t < 1:
        raise ValueError(f"t counts steps from 1, got t={t}")
    if not set(params) == set(grads) == set(m) == set(v):
        raise ValueError("params, grads, m and v must have the same keys")
    new_params, new_m, new_v = {}, {}, {}
    for name, theta in params.items():
        g = grads[name]
        new_m[name] = beta1 * m[name] + (1.0 - beta1) * g
        new_v[name] = beta2 * v[name] + (1.0 - beta2) * g**2
        m_hat = new_m[name] / (1.0 - beta1**t)
        v_hat = new_v[name] / (1.0 - beta2**t)
        new_params[name] = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return new_params, new_m, new_v
    ### END SOLUTION
