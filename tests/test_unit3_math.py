"""Unit 3 instructor solution (penalized diagonal GMM by EM and L-BFGS): math, invariants, edge cases.

The solution modules sit in one flat folder and import each other by plain module name, so the
fixture below puts that folder on ``sys.path`` for this file only and removes the modules again
afterwards (other units may use the same module names).
"""

import contextlib
import doctest
import importlib
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.optimize
import scipy.stats
from scipy.special import logsumexp

from gmmcourse import course_data
from gmmcourse.build.strip import strip_solutions

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "solutions" / "unit3_gmm_em_lbfgs" / "src"
MODULE_NAMES = sorted(path.stem for path in SRC.glob("*.py"))
TOPS_TRAIN = ROOT / "data" / "tops" / "tops-20x20flattened_x_train.csv"

# (module, function or Class.method) that must hold a solution region, i.e. what students write.
SOLUTION_REGIONS = [
    ("calc_neg_log_lik__np", "calc_log_joint_NK"),
    ("calc_neg_log_lik__np", "calc_neg_log_lik"),
    ("calc_neg_log_lik__ag", "calc_log_joint_NK"),
    ("calc_neg_log_lik__ag", "calc_neg_log_lik"),
    ("transform_softplus", "softplus"),
    ("transform_softplus", "inverse_softplus"),
    ("transform_log_softmax", "log_softmax"),
    ("transform_log_softmax", "inverse_log_softmax"),
    ("GMM_PenalizedMLEstimator_EM", "calc_EM_loss"),
    ("GMM_PenalizedMLEstimator_EM", "estep__calc_r_NK"),
    ("GMM_PenalizedMLEstimator_EM", "mstep__update_log_pi_K"),
    ("GMM_PenalizedMLEstimator_EM", "mstep__update_mu_KD"),
    ("GMM_PenalizedMLEstimator_EM", "mstep__update_stddev_KD"),
    ("GMM_PenalizedMLEstimator_EM", "fit"),
    ("GMM_PenalizedMLEstimator_LBFGS", "calc_loss"),
]
# Given files: no solution region, supplied by the autograder (listed in SUBMISSION.given).
GIVEN_MODULES = ["GMM_PenalizedMLEstimator", "calc_penalty_stddev"]


@pytest.fixture(scope="module")
def u3():
    """The unit 3 solution modules, imported from SRC under their plain names."""
    import matplotlib

    matplotlib.use("Agg")
    saved_path = list(sys.path)
    saved_modules = {name: sys.modules.pop(name) for name in MODULE_NAMES if name in sys.modules}
    sys.path.insert(0, str(SRC))
    try:
        yield SimpleNamespace(**{name: importlib.import_module(name) for name in MODULE_NAMES})
    finally:
        sys.path[:] = saved_path
        for name in MODULE_NAMES:
            sys.modules.pop(name, None)
        sys.modules.update(saved_modules)


# ---------------------------------------------------------------------------- helpers


def naive_neg_log_lik(x_ND, log_pi_K, mu_KD, stddev_KD):
    """Deliberately plain reference: scipy's normal log-pdf on an (N, K, D) grid."""
    logpdf_NK = scipy.stats.norm.logpdf(x_ND[:, None, :], mu_KD[None], stddev_KD[None]).sum(axis=2)
    return -float(np.sum(logsumexp(logpdf_NK + log_pi_K, axis=1)))


def tops_like(N, D=16, K=3, seed=0):
    """Images-like data: background pixels at exactly -1, blobs of K prototypes plus noise."""
    prng = np.random.RandomState(seed)
    proto_KD = np.where(prng.rand(K, D) < 0.5, -1.0, prng.uniform(-0.5, 1.0, size=(K, D)))
    z_N = prng.randint(K, size=N)
    x_ND = proto_KD[z_N] + 0.05 * prng.randn(N, D) * (proto_KD[z_N] > -1)
    return np.round(x_ND, 3)


def random_params(K, D, seed, scale=0.3):
    prng = np.random.RandomState(seed)
    log_pi_K = np.log(prng.dirichlet(np.ones(K)))
    return log_pi_K, prng.randn(K, D), scale * (0.2 + prng.rand(K, D))


@pytest.fixture(scope="module")
def tops_small():
    """A slice of the real tops training data if present, else synthetic data of the same kind."""
    if TOPS_TRAIN.is_file():
        return np.loadtxt(TOPS_TRAIN, delimiter=",", skiprows=1, max_rows=400)
    return tops_like(400, D=400, K=30, seed=3)


@contextlib.contextmanager
def no_warnings():
    """Turn every warning (numpy's RuntimeWarnings included) into an error inside the block."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(divide="raise", over="raise", invalid="raise"):
            yield


# ---------------------------------------------------------------------------- likelihood


@pytest.mark.parametrize("N,K,D", [(1, 1, 1), (7, 3, 2), (50, 4, 16), (30, 1, 5)])
def test_neg_log_lik_matches_naive_scipy(u3, N, K, D):
    x_ND = tops_like(N, D=D, seed=N)
    for seed in range(3):
        params = random_params(K, D, seed)
        expected = naive_neg_log_lik(x_ND, *params)
        got = u3.calc_neg_log_lik__np.calc_neg_log_lik(x_ND, *params)
        assert isinstance(got, float)
        assert got == pytest.approx(expected, rel=1e-11, abs=1e-9)


def test_neg_log_lik_accurate_on_tops_with_tight_components(u3, tops_small):
    """Means at data rows and stddevs down to 1e-3 make the matrix-product expansion cancel."""
    x_ND = tops_small
    prng = np.random.RandomState(5)
    mu_KD = x_ND[prng.choice(len(x_ND), 6, replace=False)]
    for scale in (1.0, 0.05, 1e-3):
        stddev_KD = scale * (1 + prng.rand(6, x_ND.shape[1]))
        log_pi_K = np.log(prng.dirichlet(np.ones(6)))
        expected = naive_neg_log_lik(x_ND, log_pi_K, mu_KD, stddev_KD)
        got = u3.calc_neg_log_lik__np.calc_neg_log_lik(x_ND, log_pi_K, mu_KD, stddev_KD)
        assert got == pytest.approx(expected, rel=1e-10)


def test_np_and_ag_twins_agree(u3, tops_small):
    x_ND = tops_small[:100, :50]
    for K in (1, 3):
        params = random_params(K, 50, K)
        a = u3.calc_neg_log_lik__np.calc_neg_log_lik(x_ND, *params)
        b = float(u3.calc_neg_log_lik__ag.calc_neg_log_lik(x_ND, *params))
        assert b == pytest.approx(a, rel=1e-13)


@pytest.mark.parametrize("module", ["calc_neg_log_lik__np", "calc_neg_log_lik__ag"])
def test_no_examples_gives_zero(u3, module):
    calc = getattr(u3, module).calc_neg_log_lik
    assert float(calc(np.zeros((0, 3)), *random_params(2, 3, 0))) == 0.0


@pytest.mark.parametrize("module", ["calc_neg_log_lik__np", "calc_neg_log_lik__ag"])
@pytest.mark.parametrize("tiny", [1e-30, 1e-100])
def test_tiny_stddev_is_exact_when_the_data_sit_on_the_mean(u3, module, tiny):
    """Data at the mean, everything on the scale of the stddev: the densities (about 1 / tiny per
    feature) overflow as plain numbers, their logs are exact."""
    calc = getattr(u3, module).calc_neg_log_lik
    x_ND = tiny * np.array([[0.5, -1.0, 0.25], [0.5, -1.0, 0.25]])
    mu_KD = x_ND[:1].copy()
    stddev_KD = np.full((1, 3), tiny)
    expected = 2 * 3 * (np.log(tiny) + 0.5 * np.log(2 * np.pi))  # analytic: every z is exactly 0
    with no_warnings():
        got = float(calc(x_ND, np.zeros(1), mu_KD, stddev_KD))
    assert np.isfinite(got)
    assert got == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("module", ["calc_neg_log_lik__np", "calc_neg_log_lik__ag"])
def test_tiny_stddev_in_a_mixture_matches_long_double(u3, module):
    """One component of width 1e-30 sits on an example at the origin, one broad component explains
    the rest."""
    calc = getattr(u3, module).calc_neg_log_lik
    x_ND = np.array([[0.0, 0.0], [0.0, 2e-30], [1.0, 2.0], [0.3, -0.7]])
    log_pi_K = np.log([0.25, 0.75])
    mu_KD = np.array([[0.0, 0.0], [0.5, 0.5]])
    stddev_KD = np.array([[1e-30, 1e-30], [1.0, 2.0]])
    x, mu, sd = (np.asarray(a, dtype=np.longdouble) for a in (x_ND, mu_KD, stddev_KD))
    z = (x[:, None, :] - mu[None]) / sd[None]
    logpdf_NK = np.sum(-0.5 * z * z - np.log(sd[None]) - 0.5 * np.log(2 * np.pi, dtype=np.longdouble), axis=2)
    joint_NK = logpdf_NK + np.asarray(log_pi_K, dtype=np.longdouble)
    top_N = np.max(joint_NK, axis=1)
    expected = float(-np.sum(top_N + np.log(np.sum(np.exp(joint_NK - top_N[:, None]), axis=1))))
    got = float(calc(x_ND, log_pi_K, mu_KD, stddev_KD))
    assert np.isfinite(got)
    assert got == pytest.approx(expected, rel=1e-12)


def test_penalty_is_smallest_at_sqrt_mode(u3):
    calc = u3.calc_penalty_stddev.calc_penalty_stddev
    for m, s in [(1.0, 100.0), (25.0, 100.0), (0.04, 3.0)]:
        result = scipy.optimize.minimize_scalar(
            lambda sd, m=m, s=s: calc(np.full((1, 1), sd), m, s),
            bounds=(1e-3 * np.sqrt(m), 1e3 * np.sqrt(m)),
            method="bounded",
            options=dict(xatol=1e-10),
        )
        assert result.x == pytest.approx(np.sqrt(m), rel=1e-5)
    # the formula itself, summed over entries
    stddev_KD = np.array([[0.5, 2.0], [1.0, 3.0]])
    m, s = 25.0, 100.0
    expected = np.sum(np.log(stddev_KD) / (s * m**2) + 1 / (2 * s * m * stddev_KD**2))
    assert calc(stddev_KD, m, s) == pytest.approx(expected, rel=1e-14)


# ---------------------------------------------------------------------------- transforms


def test_softplus_round_trips_and_extremes(u3):
    t = u3.transform_softplus
    s = np.logspace(-30, 3, 67)
    np.testing.assert_allclose(t.softplus(t.inverse_softplus(s)), s, rtol=1e-12)
    u = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(t.inverse_softplus(t.softplus(u)), u, rtol=1e-10, atol=1e-12)
    with no_warnings():
        big = t.softplus(np.array([1000.0, -1000.0]))
    assert big[0] == 1000.0 and big[1] == 0.0
    assert t.inverse_softplus(np.array([1e-300]))[0] == pytest.approx(np.log(1e-300), rel=1e-14)


def test_log_softmax_round_trips(u3):
    t = u3.transform_log_softmax
    prng = np.random.RandomState(0)
    u_K = 5 * prng.randn(6)
    log_pi_K = t.log_softmax(u_K)
    assert logsumexp(log_pi_K) == pytest.approx(0.0, abs=1e-14)
    np.testing.assert_allclose(t.inverse_log_softmax(log_pi_K), u_K - logsumexp(u_K), atol=1e-13)
    np.testing.assert_allclose(t.log_softmax(t.inverse_log_softmax(log_pi_K)), log_pi_K, atol=1e-13)
    np.testing.assert_allclose(t.log_softmax(np.array([1000.0, 0.0])), [0.0, -1000.0])


# ---------------------------------------------------------------------------- estimator basics


def test_generate_initial_parameters_follows_the_recipe(u3):
    Model = u3.GMM_PenalizedMLEstimator.GMM_PenalizedMLEstimator
    x_ND = tops_like(30, D=4, seed=1)
    m = 4.0
    for N, K in [(30, 5), (3, 5), (0, 2), (5, 5)]:
        model = Model(K=K, D=4, seed=1234, variance_penalty_mode=m)
        log_pi_K, mu_KD, stddev_KD = model.generate_initial_parameters(x_ND[:N])
        prng = np.random.RandomState(1234)
        if N == 0:
            expected_mu = prng.randn(K, 4)
        else:
            padded = x_ND[:N]
            if N < K:
                padded = np.vstack([padded, padded[prng.choice(N, K - N, replace=True)]])
            expected_mu = padded[prng.choice(len(padded), K, replace=False)]
        np.testing.assert_array_equal(mu_KD, expected_mu)
        np.testing.assert_array_equal(stddev_KD, np.sqrt(m) * (1 + prng.rand(K, 4)))
        np.testing.assert_allclose(log_pi_K, np.full(K, -np.log(K)))


def test_set_params_rejects_wrong_shapes_with_a_clear_message(u3):
    model = u3.GMM_PenalizedMLEstimator.GMM_PenalizedMLEstimator(K=2, D=3)
    good = dict(log_pi_K=np.log([0.5, 0.5]), mu_KD=np.zeros((2, 3)), stddev_KD=np.ones((2, 3)))
    model.set_params(**good)
    with pytest.raises(ValueError, match=r"mu_KD must have shape \(2, 3\), but got shape \(3, 2\)"):
        model.set_params(**{**good, "mu_KD": np.zeros((3, 2))})
    with pytest.raises(ValueError, match=r"log_pi_K must have shape \(2,\)"):
        model.set_params(**{**good, "log_pi_K": np.zeros(3)})
    with pytest.raises(ValueError, match="stddev_KD must be finite and positive"):
        model.set_params(**{**good, "stddev_KD": -np.ones((2, 3))})
    with pytest.raises(ValueError, match="logsumexp"):
        model.set_params(**{**good, "log_pi_K": np.zeros(2)})
    params = model.get_params()
    params["mu_KD"][0, 0] = 99.0
    assert model.mu_KD[0, 0] == 0.0  # get_params returns copies


def test_constructor_rejects_bad_hyperparameters(u3):
    Model = u3.GMM_PenalizedMLEstimator.GMM_PenalizedMLEstimator
    with pytest.raises(ValueError, match="K must be an integer >= 1, got 0"):
        Model(K=0)
    with pytest.raises(ValueError, match="variance_penalty_mode"):
        Model(variance_penalty_mode=-1.0)


# ---------------------------------------------------------------------------- EM


def make_em(u3, **kwargs):
    return u3.GMM_PenalizedMLEstimator_EM.GMM_PenalizedMLEstimator_EM(**kwargs)


def test_estep_rows_sum_to_one_and_em_loss_equals_penalized_nll(u3):
    x_ND = tops_like(60, D=8, seed=2)
    model = make_em(u3, K=4, D=8, variance_penalty_mode=2.0)
    model.set_params(*random_params(4, 8, 7))
    r_NK = model.estep__calc_r_NK(x_ND)
    assert r_NK.shape == (60, 4)
    assert np.all(r_NK >= 0)
    np.testing.assert_allclose(r_NK.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    penalized_nll = model.calc_penalty_stddev() - model.score(x_ND)
    assert model.calc_EM_loss(r_NK, x_ND) == pytest.approx(penalized_nll, rel=1e-10)
    # any other responsibilities give a larger EM loss (it is an upper bound)
    other_NK = np.full_like(r_NK, 0.25)
    assert model.calc_EM_loss(other_NK, x_ND) > penalized_nll


def test_mstep_matches_the_formulas_written_plainly(u3):
    x_ND = tops_like(40, D=5, seed=4)
    m, s = 3.0, 20.0
    model = make_em(u3, K=3, D=5, variance_penalty_mode=m, variance_penalty_spread=s)
    model.set_params(*random_params(3, 5, 1))
    r_NK = model.estep__calc_r_NK(x_ND)
    count_K = r_NK.sum(axis=0)
    np.testing.assert_allclose(np.exp(model.mstep__update_log_pi_K(r_NK)), count_K / 40, rtol=1e-12)
    mu_KD = model.mstep__update_mu_KD(r_NK, x_ND)
    np.testing.assert_allclose(mu_KD, (r_NK.T @ x_ND) / count_K[:, None], rtol=1e-12, atol=1e-14)
    model.mu_KD = mu_KD
    sq_KD = np.einsum("nk,nkd->kd", r_NK, (x_ND[:, None, :] - mu_KD[None]) ** 2)
    expected = np.sqrt((1 / (s * m) + sq_KD) / (1 / (s * m * m) + count_K[:, None]))
    np.testing.assert_allclose(model.mstep__update_stddev_KD(r_NK, x_ND), expected, rtol=1e-10)


def test_em_fit_history_length_and_last_entry_scores_the_fitted_model(u3, tops_small):
    if not TOPS_TRAIN.is_file():
        pytest.skip("needs the real tops data: EM on small synthetic data converges before 20 steps")
    x_ND, x_valid_ND = tops_small[:300], tops_small[300:]
    D = x_ND.shape[1]
    model = make_em(u3, K=8, D=D, seed=11, max_iter=20, ftol=0.0, variance_penalty_mode=25.0)
    model.fit(x_ND, x_valid_ND, verbose=False)
    history = model.history
    assert set(history) == {
        "iter",
        "train_loss",
        "train_loss_per_pixel",
        "train_score_per_pixel",
        "valid_score_per_pixel",
    }
    assert all(len(values) == 21 for values in history.values())
    assert history["iter"] == list(range(21))
    score = model.score(x_ND)
    assert history["train_score_per_pixel"][-1] == pytest.approx(score / x_ND.size, rel=1e-12)
    assert history["valid_score_per_pixel"][-1] == pytest.approx(
        model.score(x_valid_ND) / x_valid_ND.size, rel=1e-12
    )
    assert history["train_loss"][-1] == pytest.approx(model.calc_penalty_stddev() - score, rel=1e-12)
    assert history["train_loss_per_pixel"][-1] == pytest.approx(history["train_loss"][-1] / x_ND.size)
    # entry 0 scores the initial parameters
    init = make_em(u3, K=8, D=D, seed=11, variance_penalty_mode=25.0)
    init.set_params(*init.generate_initial_parameters(x_ND))
    assert history["train_score_per_pixel"][0] == pytest.approx(init.score(x_ND) / x_ND.size, rel=1e-12)


def test_em_loss_never_increases_and_double_checks_pass(u3, tops_small):
    x_ND = tops_small[:300]
    model = make_em(
        u3,
        K=5,
        D=x_ND.shape[1],
        seed=3,
        max_iter=15,
        ftol=0.0,
        variance_penalty_mode=25.0,
        do_double_check_correctness=True,
    )
    model.fit(x_ND, verbose=False)
    loss = np.array(model.history["train_loss"])
    assert np.all(np.diff(loss) <= 1e-10 * np.abs(loss[:-1])), np.diff(loss)
    assert loss[-1] < loss[0]


def test_em_stops_early_when_the_loss_stalls(u3):
    x_ND = tops_like(80, D=3, seed=8)
    model = make_em(u3, K=1, D=3, max_iter=50, ftol=1e-9)
    model.fit(x_ND, verbose=False)
    assert len(model.history["iter"]) < 51  # K=1 converges after one step


def test_em_k1_gives_the_closed_form_answer(u3):
    x_ND = tops_like(70, D=4, seed=9)
    m, s = 2.0, 50.0
    model = make_em(u3, K=1, D=4, max_iter=5, variance_penalty_mode=m, variance_penalty_spread=s)
    model.fit(x_ND, verbose=False)
    mean_D = x_ND.mean(axis=0)
    var_D = (1 / (s * m) + np.sum((x_ND - mean_D) ** 2, axis=0)) / (1 / (s * m * m) + 70)
    np.testing.assert_allclose(model.mu_KD[0], mean_D, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.stddev_KD[0], np.sqrt(var_D), rtol=1e-12)
    assert model.log_pi_K[0] == 0.0


def test_dead_component_keeps_its_mean_gets_sqrt_mode_and_causes_no_nan(u3):
    m = 4.0
    x_ND = tops_like(30, D=2, seed=10)
    model = make_em(u3, K=2, D=2, variance_penalty_mode=m)
    far_KD = np.array([[0.0, 0.0], [1e4, 1e4]])
    model.set_params(np.log([0.5, 0.5]), far_KD, np.ones((2, 2)))
    with no_warnings():
        r_NK = model.estep__calc_r_NK(x_ND)
        assert np.all(r_NK[:, 1] == 0.0)
        model.log_pi_K = model.mstep__update_log_pi_K(r_NK)
        model.mu_KD = model.mstep__update_mu_KD(r_NK, x_ND)
        model.stddev_KD = model.mstep__update_stddev_KD(r_NK, x_ND)
        assert model.log_pi_K[1] == -np.inf and model.log_pi_K[0] == 0.0
        np.testing.assert_array_equal(model.mu_KD[1], far_KD[1])
        np.testing.assert_allclose(model.stddev_KD[1], np.sqrt(m), rtol=1e-15)
        # the dead component stays harmless downstream
        r_NK = model.estep__calc_r_NK(x_ND)
        loss = model.calc_EM_loss(r_NK, x_ND)
        score = model.score(x_ND)
    assert np.all(np.isfinite(r_NK)) and np.isfinite(loss) and np.isfinite(score)
    assert loss == pytest.approx(model.calc_penalty_stddev() - score, rel=1e-12)


@pytest.mark.parametrize("N,K,D", [(2, 5, 3), (0, 3, 2), (25, 1, 1), (1, 1, 1), (40, 3, 1)])
def test_em_edge_shapes_fit_without_nan(u3, N, K, D):
    x_ND = tops_like(max(N, 1), D=D, seed=N)[:N]
    m = 2.0
    model = make_em(
        u3, K=K, D=D, seed=5, max_iter=10, variance_penalty_mode=m, do_double_check_correctness=True
    )
    with no_warnings():
        model.fit(x_ND, tops_like(7, D=D, seed=99), verbose=False)
    for values in model.history.values():
        assert np.all(np.isfinite(values))
    assert np.all(np.isfinite(model.mu_KD)) and np.all(model.stddev_KD > 0)
    assert logsumexp(model.log_pi_K) == pytest.approx(0.0, abs=1e-12)
    if N == 0:
        np.testing.assert_allclose(model.stddev_KD, np.sqrt(m))
        assert model.score(x_ND) == 0.0


def test_verbose_output_is_one_short_line_per_iteration(u3, capsys):
    model = make_em(u3, K=2, D=3, max_iter=4, ftol=0.0)
    model.fit(tops_like(20, D=3, seed=1), tops_like(5, D=3, seed=2), verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    assert all(len(line) < 140 and "valid" in line for line in lines)


def test_history_csv_round_trip(u3, tmp_path):
    model = make_em(u3, K=2, D=3, max_iter=3, ftol=0.0)
    model.fit(tops_like(20, D=3, seed=1), tops_like(5, D=3, seed=2), verbose=False)
    model.write_history_to_csv(tmp_path / "out" / "history_K02_seed42.csv")
    (run,) = u3.plot_history_for_many_runs.load_histories(tmp_path / "out")
    assert (run["K"], run["seed"]) == (2, 42)
    for key, values in model.history.items():
        np.testing.assert_array_equal(run["history"][key], values)


# ---------------------------------------------------------------------------- L-BFGS


def make_lbfgs(u3, **kwargs):
    return u3.GMM_PenalizedMLEstimator_LBFGS.GMM_PenalizedMLEstimator_LBFGS(**kwargs)


def test_lbfgs_gradient_passes_check_grad(u3):
    x_ND = tops_like(25, D=3, seed=12)
    model = make_lbfgs(u3, K=2, D=3, variance_penalty_mode=2.0, variance_penalty_spread=10.0)
    import autograd

    prng = np.random.RandomState(0)
    for _ in range(3):
        flat = model.to_flat_array(*random_params(2, 3, prng.randint(1000), scale=1.0))

        def loss(f):
            return float(model.calc_loss(f, x_ND))

        def grad(f):
            return autograd.grad(model.calc_loss)(f, x_ND)

        err = scipy.optimize.check_grad(loss, grad, flat, epsilon=1e-6)
        assert err <= 1e-5 * max(1.0, np.linalg.norm(grad(flat)))


def test_lbfgs_pack_unpack_round_trip_and_loss_value(u3):
    model = make_lbfgs(u3, K=3, D=4, variance_penalty_mode=2.0)
    params = random_params(3, 4, 2)
    back = model.to_common_parameters(model.to_flat_array(*params))
    for a, b in zip(params, back, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
    x_ND = tops_like(20, D=4, seed=1)
    model.set_params(*params)
    expected = model.calc_penalty_stddev() - model.score(x_ND)
    assert float(model.calc_loss(model.to_flat_array(*params), x_ND)) == pytest.approx(expected, rel=1e-12)


def test_lbfgs_fit_history_and_last_entry(u3):
    x_ND, x_valid_ND = tops_like(100, D=6, seed=13), tops_like(30, D=6, seed=14)
    model = make_lbfgs(u3, K=2, D=6, seed=3, max_iter=15, variance_penalty_mode=2.0)
    model.fit(x_ND, x_valid_ND, verbose=False)
    history = model.history
    n = len(history["iter"])
    assert 2 <= n <= 17 and history["iter"] == list(range(n))
    assert history["train_score_per_pixel"][-1] == pytest.approx(model.score(x_ND) / x_ND.size, rel=1e-10)
    assert history["valid_score_per_pixel"][-1] == pytest.approx(
        model.score(x_valid_ND) / x_valid_ND.size, rel=1e-10
    )
    assert history["train_loss"][-1] < history["train_loss"][0]


@pytest.mark.parametrize("N,K,D", [(2, 4, 2), (0, 2, 2), (15, 1, 1)])
def test_lbfgs_edge_shapes(u3, N, K, D):
    model = make_lbfgs(u3, K=K, D=D, max_iter=5, variance_penalty_mode=2.0)
    model.fit(tops_like(max(N, 1), D=D, seed=3)[:N], verbose=False)
    for values in model.history.values():
        assert np.all(np.isfinite(values))


# ---------------------------------------------------------------------------- scripts and release


def test_many_runs_writes_files_and_best_table(u3, tmp_path):
    em = u3.train_EM_gmm_with_many_runs
    x_ND, x_valid_ND = tops_like(60, D=4, seed=1), tops_like(20, D=4, seed=2)
    runs = em.train_EM_gmm_with_many_runs(
        x_ND, x_valid_ND, K_list=[1, 2], seed_list=[1, 2], output_dir=tmp_path, max_iter=3
    )
    assert [(r["K"], r["seed"]) for r in runs] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert len(list(tmp_path.glob("history_*.csv"))) == 4 and len(list(tmp_path.glob("params_*.npz"))) == 4
    rows = em.table_of_best_runs(runs, x_valid_ND, tops_like(10, D=4, seed=3))
    assert [row["K"] for row in rows] == [1, 2]
    fig = u3.plot_history_for_many_runs.plot_history_for_many_runs(runs)
    assert all(ax.get_xlabel() == "iteration" for ax in fig.axes) and fig._suptitle is not None
    params = runs[-1]["params"]
    fig = u3.viz_gmm_for_img_data.show_gmm_as_images(
        params["log_pi_K"], params["mu_KD"], params["stddev_KD"], image_shape=(2, 2)
    )
    assert fig.axes[0].get_title().startswith("k=")
    lbfgs_runs = u3.train_LBFGS_gmm_with_many_runs.train_LBFGS_gmm_with_many_runs(
        x_ND, None, K_list=[2], seed_list=[1], max_iter=3
    )
    assert "valid_score_per_pixel" not in lbfgs_runs[0]["history"]


def test_many_runs_command_line(u3, tmp_path, capsys, monkeypatch):
    header = ",".join(course_data.TOPS_HEADER)  # the reader checks the real 400-pixel header
    for split, seed in (("train", 1), ("valid", 2)):
        np.savetxt(
            tmp_path / f"tops-20x20flattened_x_{split}.csv",
            tops_like(30, D=400, seed=seed),
            delimiter=",",
            header=header,
            comments="",
            fmt="%.3g",
        )
    main = u3.train_EM_gmm_with_many_runs.main
    # in the release, src/course_data.py is the kit's own reader, copied there at build time
    monkeypatch.setitem(sys.modules, "course_data", course_data)
    code = main(
        [
            "--data_dir",
            str(tmp_path),
            "--output_dir",
            str(tmp_path / "out"),
            "--K_list",
            "1",
            "2",
            "--seed_list",
            "7",
            "--max_iter",
            "2",
        ]
    )
    assert code == 0 and len(list((tmp_path / "out").glob("*"))) == 4
    assert main(["--data_dir", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "o2")]) == 2
    assert "error: no tops data folder found" in capsys.readouterr().err


def test_module_doctests(u3):
    for name in MODULE_NAMES:
        with np.printoptions():  # the examples set print options; put them back afterwards
            result = doctest.testmod(getattr(u3, name), optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, name


def test_solution_regions_are_where_students_work_and_the_stubs_import(u3, tmp_path):
    for path in sorted(SRC.glob("*.py")):
        stripped = strip_solutions(path.read_text(), path.name)
        compile(stripped, path.name, "exec")
        (tmp_path / path.name).write_text(stripped)
    for module, function in SOLUTION_REGIONS:
        text = (tmp_path / f"{module}.py").read_text()
        start = text.index(f"def {function}(")
        body = text[start : text.find("\n    def ", start + 1) if "\n    def " in text[start:] else None]
        assert f'raise NotImplementedError("{function}: not written yet")' in body, (module, function)
    probe = (
        "import numpy as np, calc_neg_log_lik__np as m, GMM_PenalizedMLEstimator_EM as em\n"
        "args = (np.zeros((1, 1)), np.zeros(1), np.zeros((1, 1)), np.ones((1, 1)))\n"
        "try:\n    m.calc_neg_log_lik(*args)\n"
        "except NotImplementedError:\n    print('stub')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "stub", proc.stderr


def test_given_files_have_no_solution_region_and_are_the_graders_given_list():
    from gmmcourse import paths
    from gmmcourse.grading import runner

    given = runner.load_unit(paths.AUTOGRADER_DIR / "unit3_gmm_em_lbfgs").submission.given
    assert sorted(given) == sorted(f"{name}.py" for name in GIVEN_MODULES)
    for name in GIVEN_MODULES:
        assert "### BEGIN SOLUTION" not in (SRC / f"{name}.py").read_text(), name
    # every file with a solution region is one the grader takes from the submission
    regions = {module for module, _ in SOLUTION_REGIONS}
    files = runner.load_unit(paths.AUTOGRADER_DIR / "unit3_gmm_em_lbfgs").submission.files
    assert sorted(files) == sorted(f"{m}.py" for m in regions)


def test_no_parameters_before_fit_so_a_hasattr_check_sees_a_fresh_model(u3):
    """The CS136 fit loop initializes only ``if not hasattr(self, 'log_pi_K')``."""
    model = u3.GMM_PenalizedMLEstimator_EM.GMM_PenalizedMLEstimator_EM(K=2, D=3)
    assert not any(hasattr(model, name) for name in ("log_pi_K", "mu_KD", "stddev_KD"))
    with pytest.raises(ValueError, match="no parameters yet"):
        model.score(np.zeros((1, 3)))
