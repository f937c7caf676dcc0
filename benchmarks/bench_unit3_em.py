"""Unit 3 speed check: the instructor EM sweep against a plain numpy EM, plus the L-BFGS sweep.

    python benchmarks/bench_unit3_em.py [--repeats 3] [--skip-plain] [--skip-lbfgs]

Sweep: K in {1, 4, 8, 16} x seeds {1001, 3001, 4001, 7001}, 20 EM iterations, variance penalty
mode 25 and spread 100, validation score after every iteration (as the assignment's Problem 1 asks).

- "fast": the solution's train_EM_gmm_with_many_runs(batched=True): matrix products on centred
  data, all 16 runs' components stacked so each iteration makes one large product.
- "run by run": the same function with batched=False, i.e. sixteen separate ``fit`` calls (what a
  student's code does); reported for information.
- "plain": the same algorithm written the obvious way in this file: (N, K, D) broadcasting for the
  log densities and the M-step sums, scipy's logsumexp.  Same initialization recipe, same
  stopping rule, so the final scores must agree.
- "lbfgs": the solution's train_LBFGS_gmm_with_many_runs, at most 30 iterations.

Targets (checked by eye, never asserted; tests do not time anything): fast sweep <= 1.0 s on two
cores and <= half the plain time; L-BFGS sweep <= 30 s.  Timings are the best of ``--repeats`` runs.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "solutions" / "unit3_gmm_em_lbfgs" / "src"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(SRC))

from train_EM_gmm_with_many_runs import train_EM_gmm_with_many_runs  # noqa: E402
from train_LBFGS_gmm_with_many_runs import train_LBFGS_gmm_with_many_runs  # noqa: E402

from gmmcourse.data import load_tops  # noqa: E402

K_LIST = (1, 4, 8, 16)
SEEDS = (1001, 3001, 4001, 7001)
MODE, SPREAD, MAX_ITER, FTOL = 25.0, 100.0, 20, 1e-9


# ---------------------------------------------------------------------------- the plain EM


def plain_log_joint_NK(x_ND, log_pi_K, mu_KD, stddev_KD):
    z_NKD = (x_ND[:, None, :] - mu_KD[None, :, :]) / stddev_KD[None, :, :]
    log_pdf_NK = np.sum(-0.5 * z_NKD**2 - np.log(stddev_KD)[None] - 0.5 * np.log(2 * np.pi), axis=2)
    return log_pdf_NK + log_pi_K[None, :]


def plain_penalty(stddev_KD, m, s):
    return np.sum(np.log(stddev_KD) / (s * m * m) + 1.0 / (2 * s * m * stddev_KD**2))


def plain_em(x_ND, x_valid_ND, K, seed, m=MODE, s=SPREAD, max_iter=MAX_ITER, ftol=FTOL):
    """EM for the penalized diagonal GMM, written straightforwardly; returns the history dict."""
    N, D = x_ND.shape
    prng = np.random.RandomState(seed)
    log_pi_K = np.full(K, -np.log(K))
    mu_KD = x_ND[prng.choice(N, K, replace=False)].copy()
    stddev_KD = np.sqrt(m) * (1.0 + prng.rand(K, D))
    history = dict(train_score_per_pixel=[], valid_score_per_pixel=[], train_loss=[])
    r_NK = None
    for iter_id in range(max_iter + 1):
        if iter_id > 0:
            count_K = r_NK.sum(axis=0)
            with np.errstate(divide="ignore"):
                log_pi_K = np.log(count_K) - np.log(count_K.sum())
            alive_K = count_K > 0
            weighted_KD = np.sum(r_NK[:, :, None] * x_ND[:, None, :], axis=0)
            mu_KD[alive_K] = weighted_KD[alive_K] / count_K[alive_K, None]
            sq_KD = np.sum(r_NK[:, :, None] * (x_ND[:, None, :] - mu_KD[None]) ** 2, axis=0)
            stddev_KD = np.sqrt((1 / (s * m) + sq_KD) / (1 / (s * m * m) + count_K[:, None]))
        log_joint_NK = plain_log_joint_NK(x_ND, log_pi_K, mu_KD, stddev_KD)
        log_lik_N = logsumexp(log_joint_NK, axis=1)
        r_NK = np.exp(log_joint_NK - log_lik_N[:, None])
        train_score = np.sum(log_lik_N)
        loss = plain_penalty(stddev_KD, m, s) - train_score
        valid_score = np.sum(logsumexp(plain_log_joint_NK(x_valid_ND, log_pi_K, mu_KD, stddev_KD), axis=1))
        history["train_loss"].append(loss)
        history["train_score_per_pixel"].append(train_score / (N * D))
        history["valid_score_per_pixel"].append(valid_score / x_valid_ND.size)
        if iter_id > 0:
            previous = history["train_loss"][-2]
            if (previous - loss) / max(abs(previous), abs(loss), 1.0) <= ftol:
                break
    return history


# ---------------------------------------------------------------------------- timing


def best_time(function, repeats):
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def blas_threads():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    return ", ".join(f"{info['internal_api']}={info['num_threads']}" for info in threadpool_info()
                     if info.get("user_api") == "blas") or "unknown"


def reference_gemm_gflops():
    """Speed of one (3000 x 400) @ (400 x 116) product, the E-step's shape, to judge the machine."""
    prng = np.random.RandomState(0)
    a_ND, b_DK = prng.rand(3000, 400), prng.rand(400, 116)
    seconds, _ = best_time(lambda: [a_ND @ b_DK for _ in range(10)], 5)
    return 10 * 2 * a_ND.shape[0] * a_ND.shape[1] * b_DK.shape[1] / seconds / 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="time the fast sweep this many times")
    parser.add_argument("--skip-plain", action="store_true")
    parser.add_argument("--skip-lbfgs", action="store_true")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="limit BLAS to this many threads (needs threadpoolctl); default: leave as is")
    args = parser.parse_args(argv)
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.blas_threads, user_api="blas")

    x_ND, x_valid_ND = load_tops("train"), load_tops("valid")
    print(f"tops train {x_ND.shape}, valid {x_valid_ND.shape}; {os.cpu_count()} CPUs; BLAS threads: "
          f"{blas_threads()}; load average {os.getloadavg()[0]:.2f}")
    print(f"reference matrix product: {reference_gemm_gflops():.1f} GFLOP/s (float64, E-step shape)")
    print(f"sweep: K {list(K_LIST)} x seeds {list(SEEDS)}, max_iter {MAX_ITER}, m={MODE:g}, s={SPREAD:g}",
          flush=True)

    def em_sweep(batched):
        return train_EM_gmm_with_many_runs(x_ND, x_valid_ND, K_LIST, SEEDS, max_iter=MAX_ITER, ftol=FTOL,
                                           variance_penalty_mode=MODE, variance_penalty_spread=SPREAD,
                                           batched=batched)

    fast_s, runs = best_time(lambda: em_sweep(True), args.repeats)
    n_iter = sum(len(run["history"]["iter"]) - 1 for run in runs)
    print(f"fast EM sweep : {fast_s:7.3f} s  ({n_iter} EM iterations over {len(runs)} runs, batched; "
          f"target <= 1.0 s)", flush=True)
    single_s, single_runs = best_time(lambda: em_sweep(False), args.repeats)
    gap = max(abs(a["history"][key][-1] - b["history"][key][-1]) / (1 + abs(b["history"][key][-1]))
              for a, b in zip(runs, single_runs, strict=True) for key in b["history"])
    print(f"run-by-run EM : {single_s:7.3f} s  (16 separate fits; batched / run-by-run = "
          f"{fast_s / single_s:.3f}; max relative gap of final history values {gap:.1e})", flush=True)

    if not args.skip_plain:
        plain_s, plain_histories = best_time(
            lambda: [plain_em(x_ND, x_valid_ND, K, seed) for K in K_LIST for seed in SEEDS], 1)
        print(f"plain EM sweep: {plain_s:7.3f} s  -> fast / plain = {fast_s / plain_s:.3f} (target <= 0.5)",
              flush=True)
        diffs = {key: 0.0 for key in ("train_score_per_pixel", "valid_score_per_pixel")}
        lengths_agree = True
        for run, plain in zip(runs, plain_histories, strict=True):
            lengths_agree &= len(run["history"]["iter"]) == len(plain["train_loss"])
            for key in diffs:
                diffs[key] = max(diffs[key], abs(run["history"][key][-1] - plain[key][-1]))
        print("fast vs plain, max abs diff of final scores per pixel: "
              + ", ".join(f"{key} {value:.2e}" for key, value in diffs.items())
              + f"; same number of iterations: {lengths_agree}")

    if not args.skip_lbfgs:
        lbfgs_s, lbfgs_runs = best_time(lambda: train_LBFGS_gmm_with_many_runs(
            x_ND, x_valid_ND, K_LIST, SEEDS, max_iter=30, variance_penalty_mode=MODE,
            variance_penalty_spread=SPREAD), 1)
        n_iter = sum(len(run["history"]["iter"]) - 1 for run in lbfgs_runs)
        print(f"L-BFGS sweep  : {lbfgs_s:7.3f} s  ({n_iter} iterations; target <= 30 s)")
        for K in K_LIST:
            em_best = max(r["history"]["valid_score_per_pixel"][-1] for r in runs if r["K"] == K)
            lb_best = max(r["history"]["valid_score_per_pixel"][-1] for r in lbfgs_runs if r["K"] == K)
            print(f"  K={K:2d}: best valid score per pixel  EM {em_best: .4f}   L-BFGS {lb_best: .4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
