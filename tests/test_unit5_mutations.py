"""Unit 5's autograder against realistic student bugs and correct-but-different answers.

Each mutant is the instructor solution with one edit (an exact snippet, so a change to the solution
that removes the snippet fails loudly here). Every bug must lose points on the tests of the file it
edits; every alternative correct implementation must earn full marks on every test. Grading goes
through the built autograder zip, as on Gradescope.
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

UNIT = "unit5_density_models"
SRC = paths.SOLUTIONS_DIR / UNIT / "src"
GIVEN = ("vae_models.py", "plots.py")

KL = "anp.exp(log_var_NZ) + mu_NZ**2 - 1.0 - log_var_NZ"
BCE = "return anp.sum(x_ND * logits_ND - anp.logaddexp(0.0, logits_ND), axis=1)"

# (name, file, exact old snippet, new snippet)
BUGS = [
    (
        "KL with the wrong sign",
        "vae_objective.py",
        f"return 0.5 * anp.sum({KL}",
        f"return -0.5 * anp.sum({KL}",
    ),
    (
        "log_var read as log sigma in the KL",
        "vae_objective.py",
        KL,
        "anp.exp(2.0 * log_var_NZ) + mu_NZ**2 - 1.0 - 2.0 * log_var_NZ",
    ),
    (
        "variance used where the standard deviation is due when sampling",
        "vae_objective.py",
        "anp.exp(0.5 * log_var_NZ) * eps_NZ",
        "anp.exp(log_var_NZ) * eps_NZ",
    ),
    (
        "noise from the global generator",
        "vae_objective.py",
        "eps_NZ = rng.standard_normal(",
        "eps_NZ = np.random.standard_normal(",
    ),
    (
        "sigmoid applied, then BCE on logits again",
        "vae_objective.py",
        BCE,
        "p_ND = 1.0 / (1.0 + anp.exp(-logits_ND))\n"
        "    return anp.sum(x_ND * p_ND - anp.logaddexp(0.0, p_ND), axis=1)",
    ),
    (
        "ELBO summed over the batch instead of averaged",
        "vae_objective.py",
        "return anp.sum(elbo_N) / elbo_N.shape[0]",
        "return anp.sum(elbo_N)",
    ),
    (
        "decoder fed the posterior mean instead of a sample",
        "vae_objective.py",
        "logits_ND = decode(params, z_NZ)",
        "logits_ND = decode(params, mu_NZ)",
    ),
    (
        "true convolution (flipped kernel) instead of cross-correlation",
        "layers.py",
        "anp.dot(patches_PF, anp.reshape(W_OCKK, (O, C * K * K)).T)",
        "anp.dot(patches_PF, anp.reshape(W_OCKK[:, :, ::-1, ::-1], (O, C * K * K)).T)",
    ),
    (
        "transposed convolution without output padding",
        "layers.py",
        "H_out = (H - 1) * stride - 2 * padding + K + output_padding\n"
        "    W_out = (W - 1) * stride - 2 * padding + K + output_padding",
        "H_out = (H - 1) * stride - 2 * padding + K\n    W_out = (W - 1) * stride - 2 * padding + K",
    ),
    (
        "transposed convolution does not crop the padding",
        "layers.py",
        "S_AU = patch_selection(H_out, H, K, stride, padding, x_NCHW.dtype)",
        "S_AU = patch_selection(H_out, H, K, stride, 0, x_NCHW.dtype)",
    ),
    (
        "Adam without bias correction",
        "adam.py",
        "m_hat = new_m[name] / (1.0 - beta1**t)",
        "m_hat = new_m[name]",
    ),
    (
        "PPCA eigenvalues taken in eigh's ascending order",
        "ppca.py",
        "lam_D, U_DD = lam_D[::-1], U_DD[:, ::-1]  # largest first\n",
        "",
    ),
    (
        "PPCA sigma2 from the wrong eigenvalues (off by one)",
        "ppca.py",
        "np.mean(lam_D[M:])",
        "np.mean(lam_D[M + 1:])",
    ),
    (
        "PPCA log det with D log sigma2",
        "ppca.py",
        "log_det = (D - M) * np.log(sigma2)",
        "log_det = D * np.log(sigma2)",
    ),
    (
        "GMM log det from the Cholesky factor without the factor 2",
        "gmm_full_em.py",
        "log_det = 2.0 * np.sum(np.log(np.diag(L_DD)))",
        "log_det = np.sum(np.log(np.diag(L_DD)))",
    ),
]

FANCY_INDEX_CONV = """    N, C, H, W = x_NCHW.shape
    O, _, K, _ = W_OCKK.shape
    H_out = (H + 2 * padding - K) // stride + 1
    W_out = (W + 2 * padding - K) // stride + 1
    x_pad = anp.pad(x_NCHW, ((0, 0), (0, 0), (padding, padding), (padding, padding)), mode="constant")
    rows = stride * np.arange(H_out)[:, None] + np.arange(K)[None, :]
    cols = stride * np.arange(W_out)[:, None] + np.arange(K)[None, :]
    patches = x_pad[:, :, rows[:, :, None, None], cols[None, None, :, :]]  # N C a i b j
    return anp.einsum("ncaibj,ocij->noab", patches, W_OCKK) + b_O[None, :, None, None]
"""

ZERO_STUFFED_CONV_T = """    N, C, H, W = x_NCHW.shape
    _, O, K, _ = W_COKK.shape
    edge = K - 1 - padding
    def stuff(n):
        E = np.zeros(((n - 1) * stride + 1 + 2 * edge + output_padding, n))
        E[edge + stride * np.arange(n), np.arange(n)] = 1.0
        return E
    x_up = anp.einsum("uh,nchw,vw->ncuv", stuff(H), x_NCHW, stuff(W))
    W_flip = anp.transpose(W_COKK[:, :, ::-1, ::-1], (1, 0, 2, 3))
    return conv2d(x_up, W_flip, b_O, stride=1, padding=0)
"""

OTHER_KL = """    return -0.5 * anp.sum(1.0 + log_var_NZ - anp.square(mu_NZ) - anp.exp(log_var_NZ), axis=1)
"""

OTHER_BCE = """    log_p = -anp.logaddexp(0.0, -logits_ND)
    log_not_p = -anp.logaddexp(0.0, logits_ND)
    return anp.sum(x_ND * log_p + (1.0 - x_ND) * log_not_p, axis=1)
"""

OTHER_SAMPLE = """    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a Generator")
    noise = rng.normal(0.0, 1.0, size=np.shape(mu_NZ)).astype(mu_NZ.dtype)
    return mu_NZ + anp.sqrt(anp.exp(log_var_NZ)) * noise
"""

SVD_PPCA = """    x_ND = np.asarray(x_ND, dtype=float)
    N, D = x_ND.shape
    mu_D = x_ND.mean(axis=0)
    _, s, Vt = np.linalg.svd(x_ND - mu_D, full_matrices=False)
    lam = np.concatenate([s ** 2 / N, np.zeros(D - len(s))])
    sigma2 = lam[M:].sum() / (D - M)
    return mu_D, Vt[:M].T * np.sqrt(lam[:M] - sigma2) * -1.0, sigma2
"""

DENSE_PPCA_LL = """    from scipy.stats import multivariate_normal
    W_DM = np.asarray(W_DM, dtype=float)
    C = W_DM @ W_DM.T + sigma2 * np.eye(W_DM.shape[0])
    return np.atleast_1d(multivariate_normal(mean=mu_D, cov=C).logpdf(x_ND))
"""

SCIPY_LOG_JOINT = """    from scipy.stats import multivariate_normal
    return np.column_stack([log_pi_K[k] + multivariate_normal(mu_KD[k], cov_KDD[k]).logpdf(x_ND)
                            for k in range(len(log_pi_K))]).reshape(len(x_ND), len(log_pi_K))
"""

# (name, {file: [(function name, new region body)]})
ALTERNATIVES = [
    (
        "conv2d by fancy-index im2col and einsum; transposed conv by zero stuffing",
        {"layers.py": [("conv2d", FANCY_INDEX_CONV), ("conv_transpose2d", ZERO_STUFFED_CONV_T)]},
    ),
    (
        "KL, BCE and sampling written another way",
        {
            "vae_objective.py": [
                ("gaussian_kl_N", OTHER_KL),
                ("bernoulli_log_lik_N", OTHER_BCE),
                ("sample_z_NZ", OTHER_SAMPLE),
            ]
        },
    ),
    (
        "PPCA by SVD with flipped signs, dense scipy densities for PPCA and the GMM",
        {
            "ppca.py": [("fit_ppca", SVD_PPCA), ("ppca_log_lik_N", DENSE_PPCA_LL)],
            "gmm_full_em.py": [("calc_log_joint_NK", SCIPY_LOG_JOINT)],
        },
    ),
]


# The tests whose probes call each file: a bug is graded on these only (so the suite stays cheap);
# the correct alternatives are graded on every test.
TESTS_OF = {
    "vae_objective.py": ["gaussian_kl_N", "bernoulli_log_lik_N", "sample_z_NZ", "batch_elbo"],
    "layers.py": ["dense", "conv2d", "conv_transpose2d"],
    "adam.py": ["adam_step"],
    "ppca.py": ["fit_ppca", "ppca_log_lik_N", "ppca_posterior_mean"],
    "gmm_full_em.py": ["estep__calc_r_NK", "mstep__update_params", "fit_gmm"],
}


def test_every_test_is_some_files_test():
    tests = [t.name for t in runner.load_unit(paths.AUTOGRADER_DIR / UNIT).tests]
    assert sorted(name for names in TESTS_OF.values() for name in names) == sorted(tests)
    assert {file for _, file, _, _ in BUGS} <= set(TESTS_OF)


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    return build_zip(UNIT, tmp_path_factory.mktemp("zip"))


@pytest.mark.parametrize("name, file, old, new", BUGS, ids=[b[0] for b in BUGS])
def test_bug_loses_points(autograder_zip, tmp_path, monkeypatch, name, file, old, new):
    sub = copy_src(UNIT, tmp_path)
    (sub / file).write_text(replace_once((sub / file).read_text(), old, new, file))
    lost = lost_points(scores_on(autograder_zip, sub, TESTS_OF[file], monkeypatch))
    assert lost, f"the bug {name!r} earned full marks on {TESTS_OF[file]}"


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
            if file.name not in GIVEN:  # support files the grader supplies itself
                zf.write(file, f"my_work/src/{file.name}")
    table = scores(autograder_zip, archive)
    assert not lost_points(table), table
    assert sum(m for _, m in table.values()) == runner.load_unit(paths.AUTOGRADER_DIR / UNIT).max_score
