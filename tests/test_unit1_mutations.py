"""Unit 1's autograder against realistic student bugs (each must lose points) and correct answers
written another way (each must earn full marks), graded from the notebook through the built zip.

Each mutant is the solution notebook with exact-snippet edits, so a change to the solution that
removes a snippet fails loudly here.
"""

import pytest

from tests.mutation_support import build_zip, lost_points, mutate_notebook, scores_on

UNIT = "unit1_gaussian_classifier"
NOTEBOOK = "unit1_gaussian_classifier.ipynb"

CHOLESKY = "L_DD = np.linalg.cholesky(sigma_KDD[k] + c_K[k] * np.eye(D))"
LOG_DET = "log_det = 2.0 * np.log(np.diagonal(L_DD)).sum()"
SOLVE = "z_DN = solve_triangular(L_DD, (x_ND - mu_KD[k]).T, lower=True)"
MAHALANOBIS = 'mahalanobis_N = np.einsum("dn,dn->n", z_DN, z_DN)'
ARGMIN = "return float(candidates_C[np.argmin(valid_errors_C)]), valid_errors_C"
PREDICT_BLOCK = "yhat_N[block] = log_joint_from_eig(x_ND[block], pi_K, mu_KD, parts, c).argmax(axis=1)"

BUGS = [
    (
        "unbiased covariance where the maximum-likelihood one is asked for",
        ("fit_generative_model",),
        [
            (
                "sigma_KDD[k] = diff_MD.T @ diff_MD / counts_K[k]",
                "sigma_KDD[k] = diff_MD.T @ diff_MD / (counts_K[k] - 1)",
            )
        ],
    ),
    (
        "c added to every entry instead of the diagonal",
        ("class_log_joint",),
        [(CHOLESKY, "L_DD = np.linalg.cholesky(sigma_KDD[k] + c_K[k] + 1e-6 * np.eye(D))")],
    ),
    (
        "log pi forgotten",
        ("class_log_joint", "log_joint_sweep"),
        [
            ("log_joint_NK[:, k] = np.log(pi_K[k]) - 0.5 * (", "log_joint_NK[:, k] = -0.5 * ("),
            ("log_joint_CNK[:, :, k] = np.log(pi_K[k]) - 0.5 * (", "log_joint_CNK[:, :, k] = -0.5 * ("),
        ],
    ),
    (
        "c chosen on the examples the model was fit on",
        ("select_c",),
        [
            (
                "log_joint_sweep(x_ND[valid_idx], pi_K, mu_KD, parts, candidates_C), y_N[valid_idx]",
                "log_joint_sweep(x_ND[fit_idx], pi_K, mu_KD, parts, candidates_C), y_N[fit_idx]",
            )
        ],
    ),
    (
        "log-determinant from the Cholesky factor without the factor 2",
        ("class_log_joint",),
        [(LOG_DET, "log_det = np.log(np.diagonal(L_DD)).sum()")],
    ),
    (
        "constant pixels left out of the log-determinant",
        ("log_joint_sweep",),
        [
            (
                "log_det_C = np.log(lam_plus_c_AC).sum(axis=0) + constant_B.size * np.log(c_CK[:, k])",
                "log_det_C = np.log(lam_plus_c_AC).sum(axis=0)",
            )
        ],
    ),
    (
        "least probable class predicted",
        ("predict_and_count_errors",),
        [("parts, c).argmax(axis=1)", "parts, c).argmin(axis=1)")],
    ),
    (
        "validation part taken from the other end of the permutation",
        ("split_train_valid",),
        [
            (
                "return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])",
                "return np.sort(perm[:-n_valid]), np.sort(perm[-n_valid:])",
            )
        ],
    ),
    (
        "correct predictions counted instead of errors",
        ("predict_and_count_errors",),
        [("np.count_nonzero(yhat_N != y_N)", "np.count_nonzero(yhat_N == y_N)")],
    ),
    # ---- the gaps of issue 11
    (
        "distance on the constant pixels dropped from the quadratic form",
        ("log_joint_sweep",),
        [("rest_N[None, :] / c_CK[:, k, None]", "0.0")],
    ),
    (
        "constant pixels of class 0 used for every class",
        ("decompose_and_log_joint_from_eig",),
        [
            (
                "active_A = np.flatnonzero(np.diagonal(sigma_DD) > 0)",
                "active_A = np.flatnonzero(np.diagonal(sigma_KDD[0]) > 0)",
            )
        ],
    ),
    (
        "per-class c reduced to its first value in log_joint_from_eig",
        ("decompose_and_log_joint_from_eig",),
        [
            (
                "log_joint_sweep(x_ND, pi_K, mu_KD, parts, c_K[None, :])[0]",
                "log_joint_sweep(x_ND, pi_K, mu_KD, parts, c_K[:1])[0]",
            )
        ],
    ),
    (
        "per-class c averaged in predict",
        ("predict_and_count_errors",),
        [
            (
                PREDICT_BLOCK,
                "yhat_N[block] = log_joint_from_eig(x_ND[block], pi_K, mu_KD, parts,"
                " np.mean(c)).argmax(axis=1)",
            )
        ],
    ),
    (
        "log-determinant through np.linalg.det (overflows at D = 784)",
        ("class_log_joint",),
        [(LOG_DET, "log_det = np.log(np.linalg.det(sigma_KDD[k] + c_K[k] * np.eye(D)))")],
    ),
    (
        "fit centres the caller's x_ND in place",
        ("fit_generative_model",),
        [
            (
                "        diff_MD = x_ND[y_N == k]  # boolean indexing makes a copy, centred in place below\n"
                "        mu_KD[k] = diff_MD.mean(axis=0)\n        diff_MD -= mu_KD[k]\n",
                "        mu_KD[k] = x_ND[y_N == k].mean(axis=0)\n        x_ND[y_N == k] -= mu_KD[k]\n"
                "        diff_MD = x_ND[y_N == k]\n",
            )
        ],
    ),
    (
        "c added to the caller's covariance in place",
        ("class_log_joint",),
        [
            (
                CHOLESKY,
                "sigma_KDD[k] += c_K[k] * np.eye(D)\n            L_DD = np.linalg.cholesky(sigma_KDD[k])",
            )
        ],
    ),
    (
        "covariances stored in float32 to save memory",
        ("fit_generative_model",),
        [("sigma_KDD = np.empty((K, D, D))", "sigma_KDD = np.empty((K, D, D), dtype=np.float32)")],
    ),
    (
        "Cholesky factor computed in float32",
        ("class_log_joint",),
        [(CHOLESKY, "L_DD = np.linalg.cholesky((sigma_KDD[k] + c_K[k] * np.eye(D)).astype(np.float32))")],
    ),
    (
        "ties broken towards the last candidate",
        ("select_c",),
        [
            (
                ARGMIN,
                "return float(candidates_C[np.flatnonzero(valid_errors_C == valid_errors_C.min())[-1]]),"
                " valid_errors_C",
            )
        ],
    ),
    (
        "ties broken towards the smallest candidate",
        ("select_c",),
        [
            (
                ARGMIN,
                "best = valid_errors_C == valid_errors_C.min()\n"
                "    return float(candidates_C[best].min()), valid_errors_C",
            )
        ],
    ),
]

EIGH_LOG_JOINT = (
    "lam_D, U_DD = np.linalg.eigh(sigma_KDD[k] + c_K[k] * np.eye(D))\n"
    "        if lam_D.min() <= 0:\n"
    '            raise ValueError(f"sigma_k + c I is not positive definite for class {k}")\n'
    "        proj_DN = U_DD.T @ (x_ND - mu_KD[k]).T\n"
    "        log_det = np.log(lam_D).sum()\n"
    "        mahalanobis_N = (proj_DN**2 / lam_D[:, None]).sum(axis=0)"
)
CHO_SOLVE = (
    "from scipy.linalg import cho_factor, cho_solve\n"
    "        factor = cho_factor(sigma_KDD[k] + c_K[k] * np.eye(D), lower=True)\n"
    "        diff_DN = (x_ND - mu_KD[k]).T\n"
    "        log_det = 2.0 * np.log(np.diagonal(factor[0])).sum()\n"
    '        mahalanobis_N = np.einsum("dn,dn->n", diff_DN, cho_solve(factor, diff_DN))'
)
SCIPY_PREDICT = (
    "    from scipy.stats import multivariate_normal\n"
    "    K, D = mu_KD.shape\n"
    "    c_K = np.broadcast_to(np.asarray(c, dtype=np.float64), (K,))\n"
    "    log_joint_NK = np.empty((x_ND.shape[0], K))\n"
    "    for k in range(K):  # a loop over classes, every image at once\n"
    "        gauss = multivariate_normal(mu_KD[k], sigma_KDD[k] + c_K[k] * np.eye(D))\n"
    "        log_joint_NK[:, k] = np.log(pi_K[k]) + np.atleast_1d(gauss.logpdf(x_ND))\n"
    "    return log_joint_NK.argmax(axis=1)\n"
)


RAISE = (
    "            raise ValueError(\n"
    '                f"sigma_k + c I is not positive definite for class {k} (c = {c_K[k]:g}); '
    'use a larger c > 0"\n'
    "            ) from None"
)
TRY_BLOCK = (
    "        try:\n            "
    + CHOLESKY
    + "\n        except np.linalg.LinAlgError:\n"
    + RAISE
    + "\n        "
    + SOLVE
    + "\n        "
    + LOG_DET
    + "\n        "
    + MAHALANOBIS
    + "\n"
)


def _whole_try_block(new):
    """The Cholesky factorization, its error and the three lines after it, replaced by ``new``."""
    return [(TRY_BLOCK, "        " + new + "\n")]


PREDICT_BODY = (
    "    parts = decompose(sigma_KDD)\n    yhat_N = np.empty(x_ND.shape[0], dtype=np.int64)\n"
    "    for start in range(0, x_ND.shape[0], block_size):\n"
    "        block = slice(start, start + block_size)\n        " + PREDICT_BLOCK + "\n    return yhat_N\n"
)

ALTERNATIVES = [
    (
        "np.cov for the covariances",
        ("fit_generative_model", "select_c"),
        [
            (
                "sigma_KDD[k] = diff_MD.T @ diff_MD / counts_K[k]",
                "sigma_KDD[k] = np.cov(x_ND[y_N == k], rowvar=False, bias=True).reshape(D, D)",
            )
        ],
    ),
    (
        "slogdet for the log-determinant",
        ("class_log_joint",),
        [(LOG_DET, "log_det = np.linalg.slogdet(sigma_KDD[k] + c_K[k] * np.eye(D))[1]")],
    ),
    ("eigh of sigma + cI instead of Cholesky", ("class_log_joint",), _whole_try_block(EIGH_LOG_JOINT)),
    ("scipy.linalg.cho_factor / cho_solve", ("class_log_joint",), _whole_try_block(CHO_SOLVE)),
    (
        "predict by a loop over classes with scipy's multivariate_normal",
        ("predict_and_count_errors",),
        [(PREDICT_BODY, SCIPY_PREDICT)],
    ),
    (
        "every pixel treated as varying in decompose",
        ("decompose_and_log_joint_from_eig", "log_joint_sweep", "predict_and_count_errors", "select_c"),
        [("active_A = np.flatnonzero(np.diagonal(sigma_DD) > 0)", "active_A = np.arange(sigma_DD.shape[0])")],
    ),
    (
        "the fit's sums as matrix products over one-hot labels",
        ("fit_generative_model", "select_c"),
        [
            (
                "    for k in range(K):\n        diff_MD = x_ND[y_N == k]  # boolean indexing makes a copy,"
                " centred in place below\n        mu_KD[k] = diff_MD.mean(axis=0)\n"
                "        diff_MD -= mu_KD[k]\n"
                "        sigma_KDD[k] = diff_MD.T @ diff_MD / counts_K[k]\n",
                "    onehot_NK = (y_N[:, None] == np.arange(K)).astype(np.float64)\n"
                "    mu_KD[:] = onehot_NK.T @ x_ND / counts_K[:, None]\n"
                "    for k in range(K):\n"
                "        diff_ND = (x_ND - mu_KD[k]) * np.sqrt(onehot_NK[:, k:k + 1])\n"
                "        sigma_KDD[k] = diff_ND.T @ diff_ND / counts_K[k]\n",
            )
        ],
    ),
]


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    return build_zip(UNIT, tmp_path_factory.mktemp("zip"))


@pytest.mark.parametrize("name, tests, edits", BUGS, ids=[b[0] for b in BUGS])
def test_bug_loses_points(autograder_zip, tmp_path, monkeypatch, name, tests, edits):
    submission = mutate_notebook(UNIT, NOTEBOOK, tmp_path, edits)
    lost = lost_points(scores_on(autograder_zip, submission, tests, monkeypatch))
    assert set(lost) == set(tests), f"the bug {name!r} lost points in {sorted(lost)}, expected {tests}"


@pytest.mark.parametrize("name, tests, edits", ALTERNATIVES, ids=[a[0] for a in ALTERNATIVES])
def test_correct_alternative_earns_full_marks(autograder_zip, tmp_path, monkeypatch, name, tests, edits):
    submission = mutate_notebook(UNIT, NOTEBOOK, tmp_path, edits)
    short = lost_points(scores_on(autograder_zip, submission, tests, monkeypatch))
    assert not short, f"the correct alternative {name!r} lost points: {short}"
