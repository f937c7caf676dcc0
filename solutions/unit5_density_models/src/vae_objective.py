"""The pieces of a variational autoencoder's objective, written with ``autograd.numpy``.

A VAE with a Gaussian encoder q(z | x) = Normal(mu, diag(exp(log_var))), a standard normal prior
p(z) = Normal(0, I) and a Bernoulli decoder p(x | z) with logits l = decode(z) has, per image x,

    ELBO(x) = E_q [ log p(x | z) ] - KL( q(z | x) || p(z) ),

estimated with one reparameterised draw z = mu + exp(log_var / 2) * eps, eps ~ Normal(0, I).
Every function here only uses ``autograd.numpy``, so ``autograd.grad`` can differentiate through it.

Examples
--------
>>> import numpy as np
>>> np.set_printoptions(precision=4, suppress=True)
>>> gaussian_kl_N(np.zeros((2, 3)), np.zeros((2, 3)))
array([0., 0.])
>>> bernoulli_log_lik_N(np.array([[1.0, 0.0]]), np.zeros((1, 2)))
array([-1.3863])
"""

import autograd.numpy as anp
import numpy as np


def gaussian_kl_N(mu_NZ, log_var_NZ):
    """KL divergence from each diagonal Gaussian posterior to the standard normal prior.

    Parameters
    ----------
    mu_NZ : array of shape (N, Z)
        Posterior means.
    log_var_NZ : array of shape (N, Z)
        Natural logarithms of the posterior variances.

    Returns
    -------
    kl_N : array of shape (N,)
        KL( Normal(mu_n, diag(exp(log_var_n))) || Normal(0, I) ) in nats, one per row (>= 0).
    """
    ### BEGIN SOLUTION
    return 0.5 * anp.sum(anp.exp(log_var_NZ) + mu_NZ**2 - 1.0 - log_var_NZ, axis=1)
    ### END SOLUTION


def bernoulli_log_lik_N(x_ND, logits_ND):
    """Bernoulli log likelihood of pixel intensities given decoder logits.

    Parameters
    ----------
    x_ND : array of shape (N, D)
        Pixel intensities in [0, 1] (not necessarily 0 or 1: the binary cross-entropy form).
    logits_ND : array of shape (N, D)
        Decoder outputs before the sigmoid; the Bernoulli mean is sigmoid(logits). Any real value,
        including very large ones (the result stays finite).

    Returns
    -------
    log_lik_N : array of shape (N,)
        sum_d [ x_nd log sigmoid(l_nd) + (1 - x_nd) log(1 - sigmoid(l_nd)) ], one per row (nats).
    """
    ### BEGIN SOLUTION
    # log sigmoid(l) = l - softplus(l) and log(1 - sigmoid(l)) = -softplus(l)
    return anp.sum(x_ND * logits_ND - anp.logaddexp(0.0, logits_ND), axis=1)
    ### END SOLUTION


def sample_z_NZ(mu_NZ, log_var_NZ, rng):
    """One reparameterised draw from each diagonal Gaussian posterior.

    Parameters
    ----------
    mu_NZ : array of shape (N, Z)
        Posterior means.
    log_var_NZ : array of shape (N, Z)
        Natural logarithms of the posterior variances.
    rng : numpy.random.Generator
        Source of the standard normal noise; it is advanced by the call.

    Returns
    -------
    z_NZ : array of shape (N, Z), same dtype as mu_NZ
        mu + standard deviation * noise, differentiable in mu_NZ and log_var_NZ.

    Raises
    ------
    ValueError
        If rng is not a numpy.random.Generator.
    """
    ### BEGIN SOLUTION
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    eps_NZ = rng.standard_normal(np.shape(mu_NZ)).astype(mu_NZ.dtype)
    return mu_NZ + anp.exp(0.5 * log_var_NZ) * eps_NZ
    ### END SOLUTION


def batch_elbo(params, x_ND, rng, encode, decode):
    """Monte Carlo ELBO of a batch, averaged over its images (one draw of z per image).

    Parameters
    ----------
    params : dict of str to array
        The model's parameters, passed unchanged to ``encode`` and ``decode``.
    x_ND : array of shape (N, D)
        A batch of images, pixels in [0, 1].
    rng : numpy.random.Generator
        Source of the reparameterisation noise.
    encode : callable
        ``encode(params, x_ND)`` returns ``(mu_NZ, log_var_NZ)``.
    decode : callable
        ``decode(params, z_NZ)`` returns Bernoulli logits of shape (N, D).

    Returns
    -------
    elbo : scalar
        (1 / N) sum_n [ log p(x_n | z_n) - KL(q(z | x_n) || p(z)) ] in nats per image; autograd can
        differentiate it with respect to ``params``.
    """
    ### BEGIN SOLUTION
    mu_NZ, log_var_NZ = encode(params, x_ND)
    z_NZ = sample_z_NZ(mu_NZ, log_var_NZ, rng)
    logits_ND = decode(params, z_NZ)
    elbo_N = bernoulli_log_lik_N(x_ND, logits_ND) - gaussian_kl_N(mu_NZ, log_var_NZ)
    # The mean as a sum over N: autograd's gradient of anp.mean comes back as float64 (numpy 2
    # promotes the count it divides by), and a float64 gradient here would run the whole backward
    # pass of a float32 network in float64 (an MLP VAE epoch took 1.5 times as long).
    return anp.sum(elbo_N) / elbo_N.shape[0]
    ### END SOLUTION
