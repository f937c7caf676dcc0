"""Unit 3's autograder against realistic student bugs and correct-but-different answers.

Each mutant is the instructor solution with one edit (an exact snippet, so a change to the solution
that removes the snippet fails loudly here). Every bug must lose points in the test of the function
it breaks; every alternative correct implementation must earn full marks. Grading goes through the
built autograder zip, as on Gradescope.

A grading costs about ten seconds of CPU (a fresh worker per test), so bugs are graded in batches:
one submission carries several bugs whose target tests do not call each other's code (a bug in the
weight M-step cannot change the score of the mean M-step test, which never calls it). Each bug's
own target test must lose points; ``BATCHES`` is checked for that independence below.
"""

import zipfile

import pytest

from gmmcourse import paths
from gmmcourse.grading import runner
from tests.mutation_support import (
    build_zip,
    copy_src,
    lost_points,
    replace_once,
    replace_region,
    scores,
    scores_on,
)

UNIT = "unit3_gmm_em_lbfgs"
SRC = paths.SOLUTIONS_DIR / UNIT / "src"
NP, AG, EM, LB = (
    "calc_neg_log_lik__np.py",
    "calc_neg_log_lik__ag.py",
    "GMM_PenalizedMLEstimator_EM.py",
    "GMM_PenalizedMLEstimator_LBFGS.py",
)
SOFTPLUS, SOFTMAX = "transform_softplus.py", "transform_log_softmax.py"

# What each graded test calls, as "file:function" names of student-written code.
CALLS = {
    "calc_neg_log_lik (numpy)": {f"{NP}:*"},
    "calc_neg_log_lik (autograd)": {f"{AG}:*"},
    "estep__calc_r_NK": {f"{NP}:*", f"{EM}:estep"},
    "calc_EM_loss": {f"{NP}:*", f"{EM}:em_loss"},
    "mstep__update_log_pi_K": {f"{EM}:log_pi"},
    "mstep__update_mu_KD": {f"{EM}:mu"},
    "mstep__update_stddev_KD": {f"{EM}:stddev"},
    "fit (EM): history": {f"{NP}:*", f"{EM}:*"},
    "fit (EM): final parameters": {f"{NP}:*", f"{EM}:*"},
    "transforms": {f"{SOFTPLUS}:*", f"{SOFTMAX}:*"},
    "calc_loss (L-BFGS)": {f"{AG}:*", f"{SOFTPLUS}:*", f"{SOFTMAX}:*", f"{LB}:*"},
    "fit (L-BFGS)": {f"{NP}:*", f"{AG}:*", f"{SOFTPLUS}:*", f"{SOFTMAX}:*", f"{LB}:*"},
}

# (name, file, where: the function it breaks, exact old snippet, new snippet, test that must lose points)
BUGS = [
    # ---- the likelihood
    (
        "no log-sum-exp in the likelihood",
        NP,
        "nll",
        "return float(-np.sum(logsumexp(log_joint_NK, axis=1)))",
        "return float(-np.sum(np.log(np.sum(np.exp(log_joint_NK), axis=1))))",
        "calc_neg_log_lik (numpy)",
    ),
    (
        "normalizing constant 2 pi forgotten",
        NP,
        "log_joint",
        "log_norm_K = -np.sum(np.log(stddev_KD), axis=1) - 0.5 * D * np.log(2.0 * np.pi)",
        "log_norm_K = -np.sum(np.log(stddev_KD), axis=1)",
        "calc_neg_log_lik (numpy)",
    ),
    (
        "data cast to float32",
        NP,
        "log_joint",
        "x_ND = np.asarray(x_ND, dtype=np.float64)",
        "x_ND = np.asarray(x_ND, dtype=np.float32)",
        "calc_neg_log_lik (numpy)",
    ),
    (
        "float() inside the autograd twin breaks differentiation",
        AG,
        "nll",
        "return -ag_np.sum(logsumexp(log_joint_NK, axis=1))",
        "return -float(ag_np.sum(logsumexp(log_joint_NK, axis=1)))",
        "calc_neg_log_lik (autograd)",
    ),
    (
        "autograd twin without the weights",
        AG,
        "log_joint",
        "return log_pi_K + log_norm_K - 0.5 * quad_NK",
        "return log_norm_K - 0.5 * quad_NK",
        "calc_neg_log_lik (autograd)",
    ),
    (
        "autograd twin sums exp without a shift (underflows)",
        AG,
        "nll",
        "return -ag_np.sum(logsumexp(log_joint_NK, axis=1))",
        "return -ag_np.sum(ag_np.log(ag_np.sum(ag_np.exp(log_joint_NK), axis=1)))",
        "calc_neg_log_lik (autograd)",
    ),
    # ---- E-step and EM loss
    (
        "responsibilities not normalized",
        EM,
        "estep",
        "r_NK = np.exp(log_joint_NK - log_lik_N[:, np.newaxis])",
        "r_NK = np.exp(log_joint_NK)",
        "estep__calc_r_NK",
    ),
    (
        "responsibilities normalized over the examples",
        EM,
        "estep",
        "r_NK = np.exp(log_joint_NK - log_lik_N[:, np.newaxis])",
        "r_NK = np.exp(log_joint_NK - logsumexp(log_joint_NK, axis=0, keepdims=True))",
        "estep__calc_r_NK",
    ),
    (
        "entropy term missing from the EM loss",
        EM,
        "em_loss",
        "return float(self.calc_penalty_stddev() - expected_log_joint + neg_entropy)",
        "return float(self.calc_penalty_stddev() - expected_log_joint)",
        "calc_EM_loss",
    ),
    (
        "plain sum of r * log_joint (0 * -inf is NaN for a weight-0 component)",
        EM,
        "em_loss",
        "expected_log_joint = np.sum(r_NK[used] * log_joint_NK[used])",
        "expected_log_joint = np.sum(r_NK * log_joint_NK)",
        "calc_EM_loss",
    ),
    # ---- M-steps
    (
        "weights summed over the wrong axis",
        EM,
        "log_pi",
        "return np.log(np.sum(r_NK, axis=0)) - np.log(N)",
        "return np.log(np.sum(r_NK, axis=1)) - np.log(N)",
        "mstep__update_log_pi_K",
    ),
    (
        "weights not normalized (counts returned)",
        EM,
        "log_pi",
        "return np.log(np.sum(r_NK, axis=0)) - np.log(N)",
        "return np.log(np.sum(r_NK, axis=0))",
        "mstep__update_log_pi_K",
    ),
    (
        "no data (N = 0) gives NaN weights",
        EM,
        "log_pi",
        "        if N == 0:\n            return self.log_pi_K.copy()\n",
        "",
        "fit (EM): final parameters",
    ),
    (
        "means divided by N instead of the component's count",
        EM,
        "mu",
        "mu_KD[has_data] = (r_NK.T @ x_ND)[has_data] / count_K[has_data, np.newaxis]",
        "mu_KD[has_data] = (r_NK.T @ x_ND)[has_data] / r_NK.shape[0]",
        "mstep__update_mu_KD",
    ),
    (
        "empty component's mean becomes 0 / 0 = NaN",
        EM,
        "mu",
        "mu_KD[has_data] = (r_NK.T @ x_ND)[has_data] / count_K[has_data, np.newaxis]",
        "mu_KD = (r_NK.T @ x_ND) / count_K[:, np.newaxis]",
        "mstep__update_mu_KD",
    ),
    (
        "responsibilities cast to float32 in the mean update",
        EM,
        "mu",
        "r_NK = np.asarray(r_NK, dtype=np.float64)\n        count_K = np.sum(r_NK, axis=0)\n        mu_KD",
        "r_NK = np.asarray(r_NK, dtype=np.float32)\n        count_K = np.sum(r_NK, axis=0)\n        mu_KD",
        "mstep__update_mu_KD",
    ),
    (
        "variance returned where the stddev is due",
        EM,
        "stddev",
        "return np.sqrt(var_KD)",
        "return var_KD",
        "mstep__update_stddev_KD",
    ),
    (
        "penalty dropped from the variance update",
        EM,
        "stddev",
        "var_KD = (1.0 / (s * m) + sq_dev_KD) / (1.0 / (s * m * m) + count_K1)",
        "var_KD = sq_dev_KD / count_K1",
        "mstep__update_stddev_KD",
    ),
    (
        "penalty's prior count uses m instead of m squared",
        EM,
        "stddev",
        "var_KD = (1.0 / (s * m) + sq_dev_KD) / (1.0 / (s * m * m) + count_K1)",
        "var_KD = (1.0 / (s * m) + sq_dev_KD) / (1.0 / (s * m) + count_K1)",
        "mstep__update_stddev_KD",
    ),
    (
        "squared deviations around 0 instead of the means",
        EM,
        "stddev",
        "sq_dev_KD = r_NK.T @ x_sq_ND - count_K1 * np.square(self.mu_KD)",
        "sq_dev_KD = r_NK.T @ x_sq_ND",
        "mstep__update_stddev_KD",
    ),
    # ---- the EM loop
    (
        "off-by-one history (max_iter entries instead of max_iter + 1)",
        EM,
        "fit",
        "for iter_id in range(self.max_iter + 1):",
        "for iter_id in range(self.max_iter):",
        "fit (EM): history",
    ),
    (
        "validation score computed on the training data",
        EM,
        "fit",
        "valid_score = None if x_valid_ND is None else self.score(x_valid_ND)",
        "valid_score = None if x_valid_ND is None else self.score(x_ND)",
        "fit (EM): history",
    ),
    (
        "never stops early (ftol ignored)",
        EM,
        "fit",
        "if converged or iter_id == self.max_iter:",
        "if iter_id == self.max_iter:",
        "fit (EM): history",
    ),
    (
        "double-check mode ignored",
        EM,
        "fit",
        "            if self.do_double_check_correctness:\n"
        "                loss_after_estep = self.calc_EM_loss(r_NK, x_ND)\n"
        "                self._check_estep(train_loss, loss_after_estep, iter_id)\n"
        "            self.log_pi_K = self.mstep__update_log_pi_K(r_NK)\n"
        "            self.mu_KD = self.mstep__update_mu_KD(r_NK, x_ND)\n"
        "            self.stddev_KD = self.mstep__update_stddev_KD(r_NK, x_ND, x_sq_ND)\n"
        "            if self.do_double_check_correctness:\n"
        "                self._check_mstep(loss_after_estep, self.calc_EM_loss(r_NK, x_ND), iter_id)\n",
        "            self.log_pi_K = self.mstep__update_log_pi_K(r_NK)\n"
        "            self.mu_KD = self.mstep__update_mu_KD(r_NK, x_ND)\n"
        "            self.stddev_KD = self.mstep__update_stddev_KD(r_NK, x_ND, x_sq_ND)\n",
        "fit (EM): history",
    ),
    (
        "one more EM step after the last history entry (the CS136 loop order)",
        EM,
        "fit",
        "if converged or iter_id == self.max_iter:",
        "if converged:",
        "fit (EM): final parameters",
    ),
    # ---- transforms and L-BFGS
    (
        "naive softplus overflows",
        SOFTPLUS,
        "softplus",
        "return ag_np.logaddexp(0.0, u)",
        "return ag_np.log(1.0 + ag_np.exp(u))",
        "transforms",
    ),
    (
        "naive inverse softplus (overflows for large, -inf for tiny stddevs)",
        SOFTPLUS,
        "inverse",
        "return s + ag_np.log(-ag_np.expm1(-s))",
        "return ag_np.log(ag_np.exp(s) - 1.0)",
        "transforms",
    ),
    (
        "inverse log-softmax assumes normalized input",
        SOFTMAX,
        "inverse",
        "return log_pi_K - logsumexp(log_pi_K)",
        "return log_pi_K",
        "transforms",
    ),
    (
        "L-BFGS loss without the penalty",
        LB,
        "calc_loss",
        "return penalty + calc_neg_log_lik_ag(x_ND, log_pi_K, mu_KD, stddev_KD)",
        "return calc_neg_log_lik_ag(x_ND, log_pi_K, mu_KD, stddev_KD)",
        "calc_loss (L-BFGS)",
    ),
    (
        "L-BFGS loss per pixel (the objective scaled by 1 / (N D))",
        LB,
        "calc_loss",
        "return penalty + calc_neg_log_lik_ag(x_ND, log_pi_K, mu_KD, stddev_KD)",
        "return (penalty + calc_neg_log_lik_ag(x_ND, log_pi_K, mu_KD, stddev_KD)) / x_ND.size",
        "calc_loss (L-BFGS)",
    ),
]


def _batches():
    """Bugs grouped greedily so that no bug's target test calls code another bug in its batch
    changes (checked again by test_batches_are_independent_and_cover_every_bug)."""
    batches = []
    for i, bug in enumerate(BUGS):
        for batch in batches:
            if all(
                not _calls(bug[5], _mutates(BUGS[j]))
                and not _calls(BUGS[j][5], _mutates(bug))
                and _mutates(BUGS[j]) != _mutates(bug)
                for j in batch
            ):
                batch.append(i)
                break
        else:
            batches.append([i])
    return batches


NAIVE_LOG_JOINT = """    from scipy.stats import norm
    x_ND = np.asarray(x_ND, dtype=np.float64)
    logpdf_NKD = norm.logpdf(x_ND[:, None, :], loc=np.asarray(mu_KD)[None], scale=np.asarray(stddev_KD)[None])
    return np.asarray(log_pi_K, dtype=np.float64)[None, :] + logpdf_NKD.sum(axis=2)
"""

LOOP_LOG_JOINT = """    from scipy.stats import norm
    x_ND = np.asarray(x_ND, dtype=np.float64)
    columns = []
    for k in range(len(log_pi_K)):
        columns.append(log_pi_K[k] + np.sum(norm.logpdf(x_ND, mu_KD[k], stddev_KD[k]), axis=1))
    return np.stack(columns, axis=1) if columns else np.zeros((x_ND.shape[0], 0))
"""

DIRECT_LOG_JOINT_AG = """    x_ND = ag_np.asarray(x_ND, dtype=ag_np.float64)
    z_NKD = (x_ND[:, None, :] - mu_KD[None, :, :]) / stddev_KD[None, :, :]
    log_pdf_NK = ag_np.sum(-0.5 * z_NKD**2 - ag_np.log(stddev_KD)[None, :, :], axis=2)
    return log_pi_K + log_pdf_NK - 0.5 * x_ND.shape[1] * ag_np.log(2 * ag_np.pi)
"""

DIRECT_MSTEP_STDDEV = """        x_ND = np.asarray(x_ND, dtype=np.float64)
        m, s = self.variance_penalty_mode, self.variance_penalty_spread
        diff_NKD = x_ND[:, None, :] - self.mu_KD[None, :, :]
        spread_KD = np.einsum("nk,nkd->kd", r_NK, diff_NKD ** 2)
        count_K = r_NK.sum(axis=0)
        return np.sqrt((1 / (s * m) + spread_KD) / (1 / (s * m * m) + count_K[:, None]))
"""

# a helper function in the same file, a floor on r as many students write it, the CS136 style
# entropy r * log(r + 1e-100), and pi from the total of r rather than N
HELPER_ESTEP = """        return _normalize_rows_in_log_space(
            calc_log_joint_NK(x_ND, self.log_pi_K, self.mu_KD, self.stddev_KD))
"""
HELPER_FUNCTION = '''

def _normalize_rows_in_log_space(log_w_NK):
    """exp(log_w - logsumexp(log_w)) along each row."""
    return np.exp(log_w_NK - logsumexp(log_w_NK, axis=1)[:, np.newaxis])
'''
CS136_STYLE_LOSS = """        lj_NK = calc_log_joint_NK(x_ND, self.log_pi_K, self.mu_KD, self.stddev_KD)
        safe_NK = np.where(r_NK > 0, lj_NK, 0.0)
        entropy = -np.sum(r_NK * np.log(r_NK + 1e-100))
        return float(self.calc_penalty_stddev() - np.sum(r_NK * safe_NK) - entropy)
"""
TOTAL_LOG_PI = """        count_K = np.sum(r_NK, axis=0)
        total = np.sum(count_K)
        if total == 0:
            return np.array(self.log_pi_K, dtype=np.float64)
        with np.errstate(divide="ignore"):
            return np.log(count_K / total)
"""
ZERO_EMPTY_MEAN = """        count_K = np.sum(r_NK, axis=0)
        sum_KD = r_NK.T @ np.asarray(x_ND, dtype=np.float64)
        return sum_KD / np.maximum(count_K, 1e-300)[:, np.newaxis]
"""
WHERE_SOFTPLUS = """    return ag_np.maximum(u, 0.0) + ag_np.log1p(ag_np.exp(-ag_np.abs(u)))
"""
OTHER_LOG_SOFTMAX = """    import autograd.numpy as anp
    shift = anp.max(u_K)
    return u_K - shift - anp.log(anp.sum(anp.exp(u_K - shift)))
"""
MSTEP_FIRST_FIT = """        r_NK = None
        for iter_id in range(self.max_iter + 1):
            if iter_id > 0:
                self.log_pi_K = self.mstep__update_log_pi_K(r_NK)
                self.mu_KD = self.mstep__update_mu_KD(r_NK, x_ND)
                self.stddev_KD = self.mstep__update_stddev_KD(r_NK, x_ND)
                if self.do_double_check_correctness:
                    self._check_mstep(loss_after_estep, self.calc_EM_loss(r_NK, x_ND), iter_id)
            r_NK = self.estep__calc_r_NK(x_ND)
            train_score = self.score(x_ND)
            train_loss = self.calc_penalty_stddev() - train_score
            if self.do_double_check_correctness:
                loss_after_estep = self.calc_EM_loss(r_NK, x_ND)
                self._check_estep(train_loss, loss_after_estep, iter_id)
            valid_score = None if x_valid_ND is None else self.score(x_valid_ND)
            if self.record_iteration(train_loss, train_score, valid_score, N, N_valid,
                                     verbose=verbose, label="EM"):
                break
"""

# (name, {file: [(function name, new region body)]}, extra text appended to files)
ALTERNATIVES = [
    (
        "scipy log-densities broadcast over (N, K, D); direct (x - mu) / stddev in the autograd twin; "
        "variance by direct differences; E-step through a helper function in the same file; CS136-style "
        "entropy; weights from the total of r; empty means 0; M-step at the top of the loop; softplus "
        "and log-softmax written another stable way",
        {
            NP: [("calc_log_joint_NK", NAIVE_LOG_JOINT)],
            AG: [("calc_log_joint_NK", DIRECT_LOG_JOINT_AG)],
            EM: [
                ("mstep__update_stddev_KD", DIRECT_MSTEP_STDDEV),
                ("estep__calc_r_NK", HELPER_ESTEP),
                ("calc_EM_loss", CS136_STYLE_LOSS),
                ("mstep__update_log_pi_K", TOTAL_LOG_PI),
                ("mstep__update_mu_KD", ZERO_EMPTY_MEAN),
                ("fit", MSTEP_FIRST_FIT),
            ],
            SOFTPLUS: [("softplus", WHERE_SOFTPLUS)],
            SOFTMAX: [("log_softmax", OTHER_LOG_SOFTMAX)],
        },
        {EM: HELPER_FUNCTION},
    ),
]

# The first alternative combines ten independent rewrites into one grading (each is correct on its
# own, so together they must earn full marks); a failure names the tests that lost points.


def _mutates(bug) -> str:
    return f"{bug[1]}:{bug[2]}"


def _calls(test: str, mutated: str) -> bool:
    file = mutated.split(":")[0]
    return mutated in CALLS[test] or f"{file}:*" in CALLS[test]


BATCHES = _batches()


def test_batches_are_independent_and_cover_every_bug():
    assert sorted(i for batch in BATCHES for i in batch) == list(range(len(BUGS)))
    tests = {t.name for t in runner.load_unit(paths.AUTOGRADER_DIR / UNIT).tests}
    assert set(CALLS) == tests
    for batch in BATCHES:
        for i in batch:
            target = BUGS[i][5]
            assert _calls(target, _mutates(BUGS[i])), f"{BUGS[i][0]}: its target does not call it"
            for j in batch:
                if j != i:
                    assert not _calls(target, _mutates(BUGS[j])), (BUGS[i][0], BUGS[j][0])
                    assert _mutates(BUGS[j]) != _mutates(BUGS[i]), (BUGS[i][0], BUGS[j][0])


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    return build_zip(UNIT, tmp_path_factory.mktemp("zip"))


@pytest.mark.parametrize("batch", BATCHES, ids=[",".join(str(i) for i in b) for b in BATCHES])
def test_bugs_lose_points(autograder_zip, tmp_path, monkeypatch, batch):
    """Graded through the zip on the batch's target tests only: what is asserted is that each bug
    loses points in its own test (the alternatives below are graded on every test)."""
    sub = copy_src(UNIT, tmp_path)
    for i in batch:
        name, file, _, old, new, _ = BUGS[i]
        (sub / file).write_text(replace_once((sub / file).read_text(), old, new, f"{file} ({name})"))
    lost = lost_points(scores_on(autograder_zip, sub, {BUGS[i][5] for i in batch}, monkeypatch))
    missed = [BUGS[i][0] for i in batch if BUGS[i][5] not in lost]
    assert not missed, f"these bugs earned full marks in their own test: {missed}"


@pytest.mark.parametrize("name, edits, appended", ALTERNATIVES, ids=[a[0][:40] for a in ALTERNATIVES])
def test_correct_alternative_earns_full_marks(autograder_zip, tmp_path, name, edits, appended):
    sub = copy_src(UNIT, tmp_path)
    for file, changes in edits.items():
        text = (sub / file).read_text()
        for function, body in changes:
            text = replace_region(text, function, body)
        (sub / file).write_text(text + appended.get(file, ""))
    short = lost_points(scores(autograder_zip, sub))
    assert not short, f"a correct alternative lost points: {short}"


def test_a_zip_of_the_src_folder_is_graded_like_the_folder(autograder_zip, tmp_path):
    """Handed in as a zip with the files in a subfolder, with one more correct alternative (a loop over
    components with scipy.stats.norm.logpdf) and the given files included (the grader ignores them)."""
    sub = copy_src(UNIT, tmp_path)
    (sub / NP).write_text(replace_region((sub / NP).read_text(), "calc_log_joint_NK", LOOP_LOG_JOINT))
    archive = tmp_path / "submission.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(sub.glob("*.py")):
            zf.write(file, f"my_work/src/{file.name}")
    table = scores(autograder_zip, archive)
    assert not lost_points(table), table
    assert sum(m for _, m in table.values()) == runner.load_unit(paths.AUTOGRADER_DIR / UNIT).max_score
