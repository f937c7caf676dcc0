"""Unit 2's autograder against realistic student bugs and correct-but-different answers.

Each mutant is the instructor solution with one edit (an exact snippet, so a change to the solution
that removes the snippet fails loudly here). Every bug must lose points; every alternative correct
implementation (samplers that draw in another order included) must earn full marks. Grading goes
through the built autograder zip, as on Gradescope.

A bug is graded only on the tests of the function it edits (``scores_on``): every other test would
see the solution's code, which `gmmcourse check` grades in full. One grading of the whole zip costs
about 7 s of CPU (a fresh worker per test), one test about 1 s.
"""

import ast
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

UNIT = "unit2_gmm_mnist"
SRC = paths.SOLUTIONS_DIR / UNIT / "src"
GIVEN = ("plotting.py",)

# The unit's tests by name (autograder/unit2_gmm_mnist/tests.py), one per graded function or pair.
MLE, GAUSS, CLASSES, MIXTURE = (
    "estimate_mean_D / estimate_cov_DD",
    "draw_gaussian_samples",
    "fit_class_conditional",
    "draw_mixture_samples",
)
LOG_PDF, ESTEP, MSTEP, KMEANS = "calc_log_pdf_NK", "estep__calc_r_NK", "mstep__update_params", "run_kmeans"
INIT, FIT, BAD = "init_gmm_kmeans / init_gmm_random", "fit_gmm_em", "bad input"

# (name, file, exact old snippet, new snippet, the tests it is graded on: each must lose points)
BUGS = [
    # ---- one Gaussian
    (
        "biased covariance (1/N) where the unbiased one is due",
        "gaussian_mle.py",
        "return diff_ND.T @ diff_ND / max(N - 1, 1)",
        "return diff_ND.T @ diff_ND / N",
        (MLE,),
    ),
    (
        "sampler scales by the eigenvalues instead of their square roots",
        "gaussian_mle.py",
        "A_DD = U_DD * np.sqrt(np.maximum(lam_D, 0.0))",
        "A_DD = U_DD * np.maximum(lam_D, 0.0)",
        (GAUSS,),
    ),
    (
        "sampler by Cholesky (fails on a singular covariance)",
        "gaussian_mle.py",
        "lam_D, U_DD = np.linalg.eigh(cov_DD)\n    A_DD = U_DD * np.sqrt(np.maximum(lam_D, 0.0))",
        "A_DD = np.linalg.cholesky(cov_DD)",
        (GAUSS,),
    ),
    (
        "sampler draws from NumPy's global generator",
        "gaussian_mle.py",
        "z_SD = rng.standard_normal((n_samples, D))",
        "z_SD = np.random.standard_normal((n_samples, D))",
        (GAUSS,),
    ),
    # ---- one Gaussian per class
    (
        "class weights 1/K instead of n_c / N",
        "class_conditional.py",
        "log_pi_K = np.log(count_K) - np.log(N)",
        "log_pi_K = np.full(K, -np.log(K))",
        (CLASSES,),
    ),
    (
        "mixture sampler ignores the weights",
        "class_conditional.py",
        "z_S = rng.choice(K, size=n_samples, p=pi_K / pi_K.sum())",
        "z_S = rng.choice(K, size=n_samples)",
        (MIXTURE,),
    ),
    (
        "mixture sampler's labels do not match its points",
        "class_conditional.py",
        "x_SD[z_S == k] = draw_gaussian_samples",
        "x_SD[np.sort(z_S) == k] = draw_gaussian_samples",
        (MIXTURE,),
    ),
    # ---- log-density, E-step, M-step
    (
        "covariance entries clipped instead of its eigenvalues",
        "gmm_em.py",
        "lam_D, U_DD = np.linalg.eigh(cov_KDD[k])\n        lam_D = lam_D + eps if add_eps_to_diag else "
        "np.maximum(lam_D, eps)",
        "lam_D, U_DD = np.linalg.eigh(np.maximum(cov_KDD[k], eps) if not add_eps_to_diag else "
        "cov_KDD[k] + eps * np.eye(D))",
        (LOG_PDF,),
    ),
    (
        "eig instead of eigh, complex parts kept",
        "gmm_em.py",
        "lam_D, U_DD = np.linalg.eigh(cov_KDD[k])",
        "lam_D, U_DD = np.linalg.eig(cov_KDD[k])",
        (LOG_PDF,),
    ),
    (
        "normalizing constant 2 pi forgotten",
        "gmm_em.py",
        "-0.5 * (D * np.log(2 * np.pi) + np.sum(np.log(lam_D))",
        "-0.5 * (np.sum(np.log(lam_D))",
        (LOG_PDF,),
    ),
    (
        "add_eps_to_diag ignored (always clips)",
        "gmm_em.py",
        "lam_D = lam_D + eps if add_eps_to_diag else np.maximum(lam_D, eps)",
        "lam_D = np.maximum(lam_D, eps)",
        (LOG_PDF,),
    ),
    (
        "log-sum-exp over the wrong axis",
        "gmm_em.py",
        "log_lik_N = logsumexp(log_joint_NK, axis=1)",
        "log_lik_N = logsumexp(log_joint_NK, axis=0)",
        (ESTEP,),
    ),
    (
        "no log-sum-exp: exp, sum, log (underflows far from every mean)",
        "gmm_em.py",
        "log_lik_N = logsumexp(log_joint_NK, axis=1)",
        "log_lik_N = np.log(np.sum(np.exp(log_joint_NK), axis=1))",
        (ESTEP,),
    ),
    (
        "M-step means divided by N instead of n_k",
        "gmm_em.py",
        "mu_KD = (r_NK.T @ x_ND) / n_K[:, np.newaxis]",
        "mu_KD = (r_NK.T @ x_ND) / N",
        (MSTEP,),
    ),
    (
        "M-step covariance weighted by r^2 (square root forgotten)",
        "gmm_em.py",
        "np.sqrt(r_NK[:, k, np.newaxis]).astype(x_ND.dtype)",
        "r_NK[:, k, np.newaxis].astype(x_ND.dtype)",
        (MSTEP,),
    ),
    (
        "M-step covariance not centred on the new mean",
        "gmm_em.py",
        "* (x_ND - mu_KD[k].astype(x_ND.dtype))",
        "* x_ND",
        (MSTEP,),
    ),
    # ---- k-means and the starts
    (
        "k-means distances: |c| instead of |c|^2",
        "gmm_em.py",
        "+ np.sum(centres_KD**2, axis=1)",
        "+ np.sqrt(np.sum(centres_KD**2, axis=1))",
        (KMEANS,),
    ),
    (
        "k-means moves a centre without examples to the mean of none (NaN)",
        "gmm_em.py",
        "if np.any(z_N == k):",
        "if True:",
        (KMEANS,),
    ),
    (
        "k-means start with the M-step's biased (1/n_k) cluster covariances",
        "gmm_em.py",
        "return fit_class_conditional(x_ND, z_N, K)",
        "return mstep__update_params(x_ND, np.eye(K)[z_N])",
        (INIT,),
    ),
    (
        "random start with the biased covariance of all the data",
        "gmm_em.py",
        "cov_KDD = np.repeat(estimate_cov_DD(x_ND)[np.newaxis], K, axis=0)",
        "cov_KDD = np.repeat(np.cov(x_ND, rowvar=False, bias=True)[np.newaxis], K, axis=0)",
        (INIT,),
    ),
    # ---- the EM loop and its boundary
    (
        "EM trace one entry short (no score after the last M-step)",
        "gmm_em.py",
        "for t in range(n_iter + 1):",
        "for t in range(n_iter):",
        (FIT,),
    ),
    (
        "held-out trace scored on the training data",
        "gmm_em.py",
        "_, eval_log_lik_N = estep__calc_r_NK(x_eval_ND,",
        "_, eval_log_lik_N = estep__calc_r_NK(x_ND,",
        (FIT,),
    ),
    ("eps <= 0 accepted", "gmm_em.py", "if not eps > 0:", "if False:", (BAD,)),
]

MULTIVARIATE_NORMAL = """    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    return rng.multivariate_normal(np.asarray(mu_D, dtype=float), np.asarray(cov_DD, dtype=float),
                                   size=n_samples, method="eigh")
"""

MULTINOMIAL_MIXTURE = """    pi_K = np.exp(np.asarray(log_pi_K, dtype=np.float64))
    K, D = np.shape(mu_KD)
    count_K = rng.multinomial(n_samples, pi_K / pi_K.sum())
    z_S = np.repeat(np.arange(K), count_K)
    x_SD = np.vstack([draw_gaussian_samples(mu_KD[k], cov_KDD[k], count_K[k], rng) for k in range(K)])
    order_S = rng.permutation(n_samples)
    return x_SD[order_S], z_S[order_S]
"""

NP_COV = """    x_ND = np.asarray(x_ND, dtype=np.float64)
    if x_ND.ndim != 2 or x_ND.shape[0] == 0:
        raise ValueError("x_ND must be a non-empty (N, D) array")
    if x_ND.shape[0] == 1:
        return np.zeros((x_ND.shape[1], x_ND.shape[1]))
    return np.atleast_2d(np.cov(x_ND, rowvar=False))
"""

PRECISION_LOG_PDF = """    from numpy.linalg import eigh
    K, D = mu_KD.shape
    out = np.zeros((x_ND.shape[0], K))
    for k in range(K):
        lam, U = eigh(np.asarray(cov_KDD[k], dtype=np.float64))
        lam = np.where(lam < eps, eps, lam) if not add_eps_to_diag else lam + eps
        prec_DD = (U / lam) @ U.T
        diff = np.asarray(x_ND, dtype=np.float64) - mu_KD[k]
        maha = np.einsum("nd,de,ne->n", diff, prec_DD, diff)
        out[:, k] = -0.5 * maha - 0.5 * np.log(lam).sum() - 0.5 * D * np.log(2 * np.pi)
    return out
"""

EINSUM_MSTEP = """    x64 = np.asarray(x_ND, dtype=np.float64)
    N = x64.shape[0]
    n_K = r_NK.sum(axis=0)
    pi_K = n_K / n_K.sum()
    with np.errstate(divide="ignore"):
        log_pi_K = np.log(pi_K)
    safe = np.where(n_K == 0, 1.0, n_K)
    mu_KD = np.einsum("nk,nd->kd", r_NK, x64) / safe[:, None]
    diff_NKD = x64[:, None, :] - mu_KD[None, :, :]
    cov_KDD = np.einsum("nk,nkd,nke->kde", r_NK, diff_NKD, diff_NKD) / safe[:, None, None]
    return log_pi_K, mu_KD, cov_KDD
"""

BROADCAST_KMEANS = """    x_ND = np.asarray(x_ND, dtype=float)
    c_KD = np.array(centres_KD, dtype=float)
    for _ in range(n_iter):
        z_N = np.argmin(((x_ND[:, None, :] - c_KD[None, :, :]) ** 2).sum(axis=2), axis=1)
        for k in range(len(c_KD)):
            members = x_ND[z_N == k]
            if len(members):
                c_KD[k] = members.mean(axis=0)
    return c_KD, z_N
"""

HAND_LSE_ESTEP = """    log_pdf_NK = calc_log_pdf_NK(x_ND, mu_KD, cov_KDD, eps, add_eps_to_diag)
    log_joint_NK = log_pi_K[np.newaxis, :] + log_pdf_NK
    top_N1 = np.max(log_joint_NK, axis=1, keepdims=True)
    log_lik_N = top_N1[:, 0] + np.log(np.sum(np.exp(log_joint_NK - top_N1), axis=1))
    return np.exp(log_joint_NK - log_lik_N[:, np.newaxis]), log_lik_N
"""

# (name, {file: [(function name, new region body)]})
ALTERNATIVES = [
    (
        "Gaussian sampler by rng.multivariate_normal, covariance by np.cov",
        {"gaussian_mle.py": [("draw_gaussian_samples", MULTIVARIATE_NORMAL), ("estimate_cov_DD", NP_COV)]},
    ),
    (
        "mixture sampler: multinomial counts, components in blocks, then shuffled",
        {"class_conditional.py": [("draw_mixture_samples", MULTINOMIAL_MIXTURE)]},
    ),
    ("E-step with a hand-written stable log-sum-exp", {"gmm_em.py": [("estep__calc_r_NK", HAND_LSE_ESTEP)]}),
    (
        "log-density through the clipped precision, M-step by einsum, k-means by broadcasting",
        {
            "gmm_em.py": [
                ("calc_log_pdf_NK", PRECISION_LOG_PDF),
                ("mstep__update_params", EINSUM_MSTEP),
                ("run_kmeans", BROADCAST_KMEANS),
            ]
        },
    ),
]


# ---------------------------------------------------------------------------- which tests run what
# Derived from the sources, not written by hand: a case's probe imports the functions it calls
# (probes.py), and the submission's functions call each other by name.


def _call_graph(folder) -> dict[str, set[str]]:
    """Function defined in folder/*.py -> the plain names it calls."""
    graph = {}
    for file in sorted(folder.glob("*.py")):
        for node in ast.parse(file.read_text()).body:
            if isinstance(node, ast.FunctionDef):
                graph[node.name] = {
                    n.func.id
                    for n in ast.walk(node)
                    if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                }
    return graph


def _probe_imports() -> dict[str, set[str]]:
    tree = ast.parse((paths.AUTOGRADER_DIR / UNIT / "probes.py").read_text())
    return {
        node.name: {alias.name for n in ast.walk(node) if isinstance(n, ast.ImportFrom) for alias in n.names}
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


def _tests_running(folder) -> dict[str, set[str]]:
    """Function of the submission in ``folder`` -> names of the tests whose cases run it."""
    graph, probes = _call_graph(folder), _probe_imports()
    runs = {name: set() for name in graph}
    for test in runner.load_unit(paths.AUTOGRADER_DIR / UNIT).tests:
        for case in test.cases:
            todo = list(probes[case.probe])
            if "function" in case.args:  # raises_value_error names its target as "module:function"
                todo.append(case.args["function"].split(":")[1])
            seen = set()
            while todo:
                name = todo.pop()
                if name in graph and name not in seen:
                    seen.add(name)
                    todo.extend(graph[name])
            for name in seen:
                runs[name].add(test.name)
    return runs


def _function_holding(text: str, snippet: str) -> str:
    line = text[: text.index(snippet)].count("\n") + 1
    return next(
        node.name
        for node in ast.parse(text).body
        if isinstance(node, ast.FunctionDef) and node.lineno <= line <= node.end_lineno
    )


def _apply_alternatives(sub, alternatives):
    for _, edits in alternatives:
        for file, changes in edits.items():
            text = (sub / file).read_text()
            for function, body in changes:
                text = replace_region(text, function, body)
            (sub / file).write_text(text)


def test_every_test_runs_a_graded_function_and_every_bug_its_own_test():
    runs = _tests_running(SRC)
    unit = runner.load_unit(paths.AUTOGRADER_DIR / UNIT)
    assert set().union(*runs.values()) == {t.name for t in unit.tests}
    for name, file, old, _, tests in BUGS:
        function = _function_holding((SRC / file).read_text(), old)
        assert set(tests) <= runs[function], f"{name}: {tests} do not all run {function}"
    for name, edits in ALTERNATIVES:
        for changes in edits.values():
            assert all(runs[function] for function, _ in changes), name


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    return build_zip(UNIT, tmp_path_factory.mktemp("zip"))


@pytest.mark.parametrize("name, file, old, new, tests", BUGS, ids=[b[0] for b in BUGS])
def test_bug_loses_points(autograder_zip, tmp_path, monkeypatch, name, file, old, new, tests):
    sub = copy_src(UNIT, tmp_path)
    (sub / file).write_text(replace_once((sub / file).read_text(), old, new, file))
    lost = lost_points(scores_on(autograder_zip, sub, tests, monkeypatch))
    assert set(lost) == set(tests), f"the bug {name!r} lost points in {sorted(lost)}, expected {tests}"


@pytest.mark.parametrize("name, edits", ALTERNATIVES, ids=[a[0] for a in ALTERNATIVES])
def test_correct_alternative_earns_full_marks(autograder_zip, tmp_path, monkeypatch, name, edits):
    sub = copy_src(UNIT, tmp_path)
    _apply_alternatives(sub, [(name, edits)])
    runs = _tests_running(sub)  # of the rewritten code, which may call other functions than the solution
    tests = sorted(set().union(*(runs[function] for changes in edits.values() for function, _ in changes)))
    short = lost_points(scores_on(autograder_zip, sub, tests, monkeypatch))
    assert not short, f"a correct alternative lost points: {short}"


def test_a_zip_of_the_src_folder_is_graded_like_the_folder(autograder_zip, tmp_path):
    """Handed in as a zip with the files in a subfolder and every alternative at once, graded on every
    test (the given files are included too; the grader ignores them)."""
    sub = copy_src(UNIT, tmp_path)
    _apply_alternatives(sub, ALTERNATIVES)
    archive = tmp_path / "submission.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(sub.glob("*.py")):
            zf.write(file, f"my_work/src/{file.name}")
    table = scores(autograder_zip, archive)
    assert not lost_points(table), table
    assert sum(m for _, m in table.values()) == runner.load_unit(paths.AUTOGRADER_DIR / UNIT).max_score
