"""Unit 2 speed and fidelity check: one EM iteration of the model answer against scikit-learn's.

    python benchmarks/bench_unit2_em.py [--repeats 3] [--blas-threads 2] [--fidelity-iters 20]

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
from gmm_em import estep__calc_r_NK, fit_gmm_em, mstep__update_params  # noqa: E402

from gmmcourse.data import load_mnist  # noqa: E402

EPS = 1e-3


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
    return GaussianMixture(len(log_pi_K), covariance_type="full", reg_covar=EPS, max_iter=max_iter, tol=0.0,
                           warm_start=True, weights_init=np.exp(log_pi_K), means_init=mu_KD,
                           precisions_init=np.linalg.inv(start_KDD))


def sklearn_iteration(gm, x_ND):
    log_prob_norm, log_resp = gm._e_step(x_ND)
    gm._m_step(x_ND, log_resp)
    return log_prob_norm


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--blas-threads", type=int, default=2)
    parser.add_argument("--fidelity-iters", type=int, default=20)
    args = parser.parse_args()
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    images, labels = load_mnist("train", size=16)
    x_ND = images.reshape(len(images), 256) / 255.0
    x32_ND = x_ND.astype(np.float32)
    params = fit_class_conditional(x_ND, labels.astype(int), 10)
    print(f"data {x_ND.shape}, K = 10, eps = {EPS:g}, BLAS threads {args.blas_threads}, "
          f"load average before {os.getloadavg()[0]:.2f}")

    with threadpool_limits(args.blas_threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = sklearn_model(params)
        gm.fit(x_ND[:20])  # sets the initial parameters; the timed iterations below use all the data
        gm.weights_, gm.means_ = np.exp(params[0]), params[1]
        gm.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(params[2] + EPS * np.eye(256)))
        state = (gm.weights_.copy(), gm.means_.copy(), gm.precisions_cholesky_.copy())

        def sk_once():
            gm.weights_, gm.means_, gm.precisions_cholesky_ = (a.copy() for a in state)
            return sklearn_iteration(gm, x_ND)

        t_sk, _ = best_of(args.repeats, sk_once)
        t64, (_, ll64) = best_of(args.repeats, lambda: our_iteration(x_ND, params))
        t32, (_, ll32) = best_of(args.repeats, lambda: our_iteration(x32_ND, params))
        ll64_after = our_iteration(x_ND, our_iteration(x_ND, params)[0])[1]
        ll32_after = our_iteration(x32_ND, our_iteration(x32_ND, params)[0])[1]
        load = os.getloadavg()[0]
        print(f"one EM iteration: sklearn {t_sk:.2f} s, ours float64 {t64:.2f} s ({t64 / t_sk:.2f}x), "
              f"ours float32 {t32:.2f} s ({t32 / t_sk:.2f}x)   [load average {load:.2f}]")
        print(f"log-likelihood per image: float64 {ll64_after:.6f}, float32 {ll32_after:.6f} after one "
              f"iteration, relative difference {abs(ll32_after - ll64_after) / abs(ll64_after):.2e} "
              f"(at the start {abs(ll32 - ll64) / abs(ll64):.2e})")

        T = args.fidelity_iters
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
        print(f"fidelity, {T} iterations from the same start (add_eps_to_diag=True vs reg_covar): largest "
              f"relative difference {rel:.2e} (target 1e-8); final log-likelihood {ours_T[-1]:.4f} "
              f"vs {theirs_T[-1]:.4f}; ours {t_ours_fit:.1f} s, sklearn fit calls {t_sk_fit:.1f} s "
              f"[load average {os.getloadavg()[0]:.2f}]")


if __name__ == "__main__":
    main()
