"""Unit 2's autograder against realistic student bugs and correct-but-different answers.

Each mutant is the instructor solution with one edit (an exact snippet, so a change to the solution
that removes the snippet fails loudly here). Every bug must lose points; every alternative correct
implementation (samplers that draw in another order included) must earn full marks. Grading goes
through the built autograder zip, as on Gradescope.
"""

import zipfile

import pytest

from gmmcourse import paths
from gmmcourse.grading import runner
from tests.mutation_support import build_zip, copy_src, lost_points, replace_once, replace_region, scores

UNIT = "unit2_gmm_mnist"
SRC = paths.SOLUTIONS_DIR / UNIT / "src"
GIVEN = ("plotting.py",)

# (name, file, exact old snippet, new snippet). Kept to 13 so that the suite stays within its CPU
# budget (one grading through the zip costs about 7 s of CPU); tests/test_unit2_math.py checks the
# 2 pi constant, the weights n_c / N, empty k-means centres and the add_eps_to_diag path directly.
BUGS = [
    ("biased covariance (1/N) where the unbiased one is due", "gaussian_mle.py",
     "return diff_ND.T @ diff_ND / max(N - 1, 1)", "return diff_ND.T @ diff_ND / N"),
    ("sampler scales by the eigenvalues instead of their square roots", "gaussian_mle.py",
     "A_DD = U_DD * np.sqrt(np.maximum(lam_D, 0.0))", "A_DD = U_DD * np.maximum(lam_D, 0.0)"),
    ("sampler draws from NumPy's global generator", "gaussian_mle.py",
     "z_SD = rng.standard_normal((n_samples, D))", "z_SD = np.random.standard_normal((n_samples, D))"),
    ("mixture sampler ignores the weights", "class_conditional.py",
     "z_S = rng.choice(K, size=n_samples, p=pi_K / pi_K.sum())", "z_S = rng.choice(K, size=n_samples)"),
    ("mixture sampler's labels do not match its points", "class_conditional.py",
     "x_SD[z_S == k] = draw_gaussian_samples", "x_SD[np.sort(z_S) == k] = draw_gaussian_samples"),
    ("covariance entries clipped instead of its eigenvalues", "gmm_em.py",
     "lam_D, U_DD = np.linalg.eigh(cov_KDD[k])\n        lam_D = lam_D + eps if add_eps_to_diag else "
     "np.maximum(lam_D, eps)",
     "lam_D, U_DD = np.linalg.eigh(np.maximum(cov_KDD[k], eps) if not add_eps_to_diag else "
     "cov_KDD[k] + eps * np.eye(D))"),
    ("eig instead of eigh, complex parts kept", "gmm_em.py",
     "lam_D, U_DD = np.linalg.eigh(cov_KDD[k])", "lam_D, U_DD = np.linalg.eig(cov_KDD[k])"),
    ("log-sum-exp over the wrong axis", "gmm_em.py",
     "log_lik_N = logsumexp(log_joint_NK, axis=1)", "log_lik_N = logsumexp(log_joint_NK, axis=0)"),
    ("M-step covariance weighted by r^2 (square root forgotten)", "gmm_em.py",
     "np.sqrt(r_NK[:, k, np.newaxis]).astype(x_ND.dtype)", "r_NK[:, k, np.newaxis].astype(x_ND.dtype)"),
    ("M-step covariance not centred on the new mean", "gmm_em.py",
     "* (x_ND - mu_KD[k].astype(x_ND.dtype))", "* x_ND"),
    ("k-means distances: |c| instead of |c|^2", "gmm_em.py",
     "+ np.sum(centres_KD**2, axis=1)", "+ np.sqrt(np.sum(centres_KD**2, axis=1))"),
    ("EM trace one entry short (no score after the last M-step)", "gmm_em.py",
     "for t in range(n_iter + 1):", "for t in range(n_iter):"),
    ("eps <= 0 accepted", "gmm_em.py", "if not eps > 0:", "if False:"),
]

MULTIVARIATE_NORMAL = '''    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    return rng.multivariate_normal(np.asarray(mu_D, dtype=float), np.asarray(cov_DD, dtype=float),
                                   size=n_samples, method="eigh")
'''

MULTINOMIAL_MIXTURE = '''    pi_K = np.exp(np.asarray(log_pi_K, dtype=np.float64))
    K, D = np.shape(mu_KD)
    count_K = rng.multinomial(n_samples, pi_K / pi_K.sum())
    z_S = np.repeat(np.arange(K), count_K)
    x_SD = np.vstack([draw_gaussian_samples(mu_KD[k], cov_KDD[k], count_K[k], rng) for k in range(K)])
    order_S = rng.permutation(n_samples)
    return x_SD[order_S], z_S[order_S]
'''

NP_COV = '''    x_ND = np.asarray(x_ND, dtype=np.float64)
    if x_ND.ndim != 2 or x_ND.shape[0] == 0:
        raise ValueError("x_ND must be a non-empty (N, D) array")
    if x_ND.shape[0] == 1:
        return np.zeros((x_ND.shape[1], x_ND.shape[1]))
    return np.atleast_2d(np.cov(x_ND, rowvar=False))
'''

PRECISION_LOG_PDF = '''    from numpy.linalg import eigh
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
'''

EINSUM_MSTEP = '''    x64 = np.asarray(x_ND, dtype=np.float64)
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
'''

BROADCAST_KMEANS = '''    x_ND = np.asarray(x_ND, dtype=float)
    c_KD = np.array(centres_KD, dtype=float)
    for _ in range(n_iter):
        z_N = np.argmin(((x_ND[:, None, :] - c_KD[None, :, :]) ** 2).sum(axis=2), axis=1)
        for k in range(len(c_KD)):
            members = x_ND[z_N == k]
            if len(members):
                c_KD[k] = members.mean(axis=0)
    return c_KD, z_N
'''

# (name, {file: [(function name, new region body)]})
ALTERNATIVES = [
    ("Gaussian sampler by rng.multivariate_normal, covariance by np.cov",
     {"gaussian_mle.py": [("draw_gaussian_samples", MULTIVARIATE_NORMAL), ("estimate_cov_DD", NP_COV)]}),
    ("mixture sampler: multinomial counts, components in blocks, then shuffled",
     {"class_conditional.py": [("draw_mixture_samples", MULTINOMIAL_MIXTURE)]}),
    ("log-density through the clipped precision, M-step by einsum, k-means by broadcasting",
     {"gmm_em.py": [("calc_log_pdf_NK", PRECISION_LOG_PDF), ("mstep__update_params", EINSUM_MSTEP),
                    ("run_kmeans", BROADCAST_KMEANS)]}),
]


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    return build_zip(UNIT, tmp_path_factory.mktemp("zip"))


@pytest.mark.parametrize("name, file, old, new", BUGS, ids=[b[0] for b in BUGS])
def test_bug_loses_points(autograder_zip, tmp_path, name, file, old, new):
    sub = copy_src(UNIT, tmp_path)
    (sub / file).write_text(replace_once((sub / file).read_text(), old, new, file))
    assert lost_points(scores(autograder_zip, sub)), f"the bug {name!r} earned full marks"


@pytest.mark.parametrize("name, edits", ALTERNATIVES, ids=[a[0] for a in ALTERNATIVES])
def test_correct_alternative_earns_full_marks(autograder_zip, tmp_path, name, edits):
    sub = copy_src(UNIT, tmp_path)
    for file, changes in edits.items():
        text = (sub / file).read_text()
        for function, body in changes:
            text = replace_region(text, function, body)
        (sub / file).write_text(text)
    short = lost_points(scores(autograder_zip, sub))
    assert not short, f"a correct alternative lost points: {short}"


def test_a_zip_of_the_src_folder_is_graded_like_the_folder(autograder_zip, tmp_path):
    archive = tmp_path / "submission.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(SRC.glob("*.py")):
            if file.name not in GIVEN:  # the grader supplies its own copy of the given files
                zf.write(file, f"my_work/src/{file.name}")
    table = scores(autograder_zip, archive)
    assert not lost_points(table), table
    assert sum(m for _, m in table.values()) == runner.load_unit(paths.AUTOGRADER_DIR / UNIT).max_score
