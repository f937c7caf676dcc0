"""Unit 2 speed and fidelity check: one EM iteration of the model answer against scikit-learn's.

    python benchmarks/bench_unit2_em.py [--repeats 3] [--threads 2] [--fidelity-iters 20] [--seeds 5]
                                        [--skip-speed] [--skip-references]

Data: all 60 000 MNIST training images at 16 x 16 (D = 256) in [0, 1]; K = 10 components started at
the class-conditional fit (one Gaussian per digit, deterministic), eps = 1e-3.

- "ours float64" / "ours float32": one E-step plus one M-step of the solution's ``gmm_em``
  (``estep__calc_r_NK`` then ``mstep__update_params``) on float64 or float32 data.
- "sklearn": one ``_e_step`` plus one ``_m_step`` of ``GaussianMixture(covariance_type="full",
  reg_covar=eps)`` set to the same parameters (what one iteration of its ``fit`` loop does).
- fidelity: with ``add_eps_to_diag=True`` the solution's log-likelihood trace from the same start
  must equal sklearn's lower bound at every iteration to 1e-8 relative (float64).
- float32 vs float64: the relative difference of the mean log-likelihood after one iteration
  (target <= 1e-6).

- reference numbers (20 iterations, tol 0, eps = 1e-3, test log-likelihood per image on the 10 000
  test images, against the issue's values): one Gaussian, the class-conditional mixture, EM from the
  solution's k-means start (10 rounds) and random start for seeds 0 .. ``--seeds`` - 1, and sklearn's
  ``GaussianMixture(covariance_type="full", reg_covar=eps, max_iter=20, tol=0, random_state=seed)``:
  fitted for real for seed 0, and for every seed from sklearn's own start (its ``KMeans`` labels for
  that ``random_state``) followed by the solution's EM with ``add_eps_to_diag=True`` (the fidelity
  line shows that this is sklearn's EM to rounding). The EM runs here use float32 products, as the
  notebook does.

Targets (checked by eye, never asserted): ours float32 <= 0.5 x sklearn's iteration time in the same
run. Timings are the best of ``--repeats``; the load average is printed beside them because the
machine is shared.
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "solutions" / "unit2_gmm_mnist" / "src"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(SRC))

from class_conditional import fit_class_conditional  # noqa: E402
from gaussian_mle import estimate_cov_DD, estimate_mean_D  # noqa: E402
from gmm_em import (  # noqa: E402
    estep__calc_r_NK,
    fit_gmm_em,
    init_gmm_kmeans,
    init_gmm_random,
    mstep__update_params,
)

from gmmcourse.data import load_mnist  # noqa: E402

EPS = 1e-3
N_ITER = 20
KMEANS_ROUNDS = 10  # as in the notebook
ISSUE = {
    "one Gaussian": 381.0,
    "one Gaussian per class": 443.8,
    "k-means start": 450.1,
    "random start": 444.8,
    "sklearn, reg_covar": 442.4,
}


def best_of(repeats, function):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = function()
        times.append(time.perf_counter() - start)
    return min(times), out


def our_iteration(x_ND, params):
    r_NK, log_lik_N = estep__calc_r_NK(x_ND, *params, EPS)
    return mstep__update_params(x_ND, r_NK), float(np.mean(log_lik_N))


def sklearn_model(params, max_iter=1, add_reg_to_start=True):
    from sklearn.mixture import GaussianMixture

    log_pi_K, mu_KD, cov_KDD = params
    D = mu_KD.shape[1]
    start_KDD = cov_KDD + (EPS * np.eye(D) if add_reg_to_start else 0.0)
    return GaussianMixture(
        len(log_pi_K),
        covariance_type="full",
        reg_covar=EPS,
        max_iter=max_iter,
        tol=0.0,
        warm_start=True,
        weights_init=np.exp(log_pi_K),
        means_init=mu_KD,
        precisions_init=np.linalg.inv(start_KDD),
    )


def sklearn_iteration(gm, x_ND):
    log_prob_norm, log_resp = gm._e_step(x_ND)
    gm._m_step(x_ND, log_resp)
    return log_prob_norm


def test_log_lik(x_test_ND, params, add_eps_to_diag=False):
    return float(np.mean(estep__calc_r_NK(x_test_ND, *params, EPS, add_eps_to_diag)[1]))


def em_test_log_lik(x_ND, x_test_ND, init, add_eps_to_diag=False):
    """Test log-likelihood per image after N_ITER EM iterations (float32 products) from init."""
    params = fit_gmm_em(x_ND, *init, N_ITER, EPS, add_eps_to_diag=add_eps_to_diag, dtype=np.float32)[:3]
    return test_log_lik(x_test_ND, params, add_eps_to_diag)


def sklearn_start(x_ND, seed):
    """sklearn's own initial parameters (init_params="kmeans"), with its reg_covar taken off the
    covariances again (add_eps_to_diag adds eps back in every density)."""
    from sklearn.mixture import GaussianMixture
    from sklearn.utils import check_random_state

    gm = GaussianMixture(10, covariance_type="full", reg_covar=EPS)
    gm._initialize_parameters(x_ND, check_random_state(seed))
    return np.log(gm.weights_), gm.means_, gm.covariances_ - EPS * np.eye(x_ND.shape[1])


def spread(values):
    v = np.array(values)
    return (
        f"mean {v.mean():.2f}, sd {v.std(ddof=1) if len(v) > 1 else 0.0:.2f}, "
        f"range {v.min():.2f} .. {v.max():.2f}"
    )


def reference_numbers(x_ND, y_N, x_test_ND, seeds):
    from sklearn.mixture import GaussianMixture

    start = time.perf_counter()
    print(
        f"reference numbers: test log-likelihood per image, {N_ITER} iterations, tol 0, eps = {EPS:g} "
        f"(issue's value in brackets)"
    )
    single = (np.zeros(1), estimate_mean_D(x_ND)[None], estimate_cov_DD(x_ND)[None])
    print(
        f"  one Gaussian (clip)                 {test_log_lik(x_test_ND, single):8.2f}  "
        f"[{ISSUE['one Gaussian']}]"
    )
    classes = fit_class_conditional(x_ND, y_N, 10)
    print(
        f"  one Gaussian per class (clip)       {test_log_lik(x_test_ND, classes):8.2f}  "
        f"[{ISSUE['one Gaussian per class']}]",
        flush=True,
    )
    runs = {"k-means start": [], "random start": [], "sklearn, reg_covar": []}
    for seed in seeds:
        kmeans_start = init_gmm_kmeans(x_ND, 10, KMEANS_ROUNDS, np.random.default_rng(seed))
        runs["k-means start"].append(em_test_log_lik(x_ND, x_test_ND, kmeans_start))
        random_start = init_gmm_random(x_ND, 10, np.random.default_rng(seed))
        runs["random start"].append(em_test_log_lik(x_ND, x_test_ND, random_start))
        runs["sklearn, reg_covar"].append(em_test_log_lik(x_ND, x_test_ND, sklearn_start(x_ND, seed), True))
        print(
            f"  seed {seed}: k-means start {runs['k-means start'][-1]:.2f}, random start "
            f"{runs['random start'][-1]:.2f}, sklearn's start + reg {runs['sklearn, reg_covar'][-1]:.2f} "
            f"[{time.perf_counter() - start:.0f} s, load average {os.getloadavg()[0]:.2f}]",
            flush=True,
        )
    for name, values in runs.items():
        print(f"  {name:34s} seeds {seeds[0]}-{seeds[-1]}: {spread(values)}  [{ISSUE[name]}]")
    gm = GaussianMixture(10, covariance_type="full", reg_covar=EPS, max_iter=N_ITER, tol=0.0, random_state=0)
    gm.fit(x_ND)
    print(
        f"  sklearn GaussianMixture fitted for real (random_state=0, float64): {gm.score(x_test_ND):.2f} "
        f"(from its start with our EM: {runs['sklearn, reg_covar'][0]:.2f}) "
        f"[{time.perf_counter() - start:.0f} s, load average {os.getloadavg()[0]:.2f}]"
    )


def speed_and_fidelity(x_ND, x32_ND, params, repeats, fidelity_iters):
    gm = sklearn_model(params)
    gm.fit(x_ND[:20])  # sets the initial parameters; the timed iterations below use all the data
    gm.weights_, gm.means_ = np.exp(params[0]), params[1]
    gm.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(params[2] + EPS * np.eye(256)))
    state = (gm.weights_.copy(), gm.means_.copy(), gm.precisions_cholesky_.copy())

    def sk_once():
        gm.weights_, gm.means_, gm.precisions_cholesky_ = (a.copy() for a in state)
        return sklearn_iteration(gm, x_ND)

    t_sk, _ = best_of(repeats, sk_once)
    t64, (_, ll64) = best_of(repeats, lambda: our_iteration(x_ND, params))
    t32, (_, ll32) = best_of(repeats, lambda: our_iteration(x32_ND, params))
    ll64_after = our_iteration(x_ND, our_iteration(x_ND, params)[0])[1]
    ll32_after = our_iteration(x32_ND, our_iteration(x32_ND, params)[0])[1]
    load = os.getloadavg()[0]
    print(
        f"one EM iteration: sklearn {t_sk:.2f} s, ours float64 {t64:.2f} s ({t64 / t_sk:.2f}x), "
        f"ours float32 {t32:.2f} s ({t32 / t_sk:.2f}x)   [load average {load:.2f}]"
    )
    print(
        f"log-likelihood per image: float64 {ll64_after:.6f}, float32 {ll32_after:.6f} after one "
        f"iteration, relative difference {abs(ll32_after - ll64_after) / abs(ll64_after):.2e} "
        f"(at the start {abs(ll32 - ll64) / abs(ll64):.2e})"
    )

    T = fidelity_iters
    start = time.perf_counter()
    ours_T = fit_gmm_em(x_ND, *params, T, EPS, add_eps_to_diag=True)[3][:T]
    t_ours_fit = time.perf_counter() - start
    gm = sklearn_model(params)
    theirs_T = []
    start = time.perf_counter()
    for _ in range(T):
        gm.fit(x_ND)
        theirs_T.append(gm.lower_bound_)
    t_sk_fit = time.perf_counter() - start
    rel = np.max(np.abs(ours_T - np.array(theirs_T)) / np.abs(theirs_T))
    print(
        f"fidelity, {T} iterations from the same start (add_eps_to_diag=True vs reg_covar): largest "
        f"relative difference {rel:.2e} (target 1e-8); final log-likelihood {ours_T[-1]:.4f} "
        f"vs {theirs_T[-1]:.4f}; ours {t_ours_fit:.1f} s, sklearn fit calls {t_sk_fit:.1f} s "
        f"[load average {os.getloadavg()[0]:.2f}]"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads for the whole run")
    parser.add_argument("--fidelity-iters", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the reference runs")
    parser.add_argument("--skip-speed", action="store_true", help="skip the timing and fidelity part")
    parser.add_argument("--skip-references", action="store_true", help="skip the reference numbers")
    args = parser.parse_args()
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    images, labels = load_mnist("train", size=16)
    x_ND = images.reshape(len(images), 256) / 255.0
    x32_ND = x_ND.astype(np.float32)
    params = fit_class_conditional(x_ND, labels.astype(int), 10)
    print(
        f"data {x_ND.shape}, K = 10, eps = {EPS:g}, BLAS threads {args.threads}, "
        f"load average before {os.getloadavg()[0]:.2f}"
    )

    with threadpool_limits(args.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if not args.skip_speed:
            speed_and_fidelity(x_ND, x32_ND, params, args.repeats, args.fidelity_iters)
        if not args.skip_references:
            images_test, _ = load_mnist("test", size=16)
            x_test_ND = images_test.reshape(len(images_test), 256) / 255.0
            reference_numbers(x_ND, labels.astype(int), x_test_ND, list(range(args.seeds)))


if __name__ == "__main__":
    main()
