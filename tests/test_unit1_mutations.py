"""Unit 1's autograder against realistic student bugs (each must lose points) and a correct answer
written another way (must earn full marks), graded from the notebook through the built zip."""

import pytest

from tests.mutation_support import build_zip, lost_points, mutate_notebook, scores

UNIT = "unit1_gaussian_classifier"
NOTEBOOK = "unit1_gaussian_classifier.ipynb"

BUGS = [
    ("unbiased covariance where the maximum-likelihood one is asked for",
     [("sigma_KDD[k] = diff_MD.T @ diff_MD / counts_K[k]",
       "sigma_KDD[k] = diff_MD.T @ diff_MD / (counts_K[k] - 1)")]),
    ("c added to every entry instead of the diagonal",
     [("np.linalg.cholesky(sigma_KDD[k] + c_K[k] * np.eye(D))",
       "np.linalg.cholesky(sigma_KDD[k] + c_K[k] + 1e-6 * np.eye(D))")]),
    ("log pi forgotten",
     [("log_joint_NK[:, k] = np.log(pi_K[k]) - 0.5 * (", "log_joint_NK[:, k] = -0.5 * ("),
      ("log_joint_CNK[:, :, k] = np.log(pi_K[k]) - 0.5 * (", "log_joint_CNK[:, :, k] = -0.5 * (")]),
    ("c chosen on the examples the model was fit on",
     [("log_joint_sweep(x_ND[valid_idx], pi_K, mu_KD, parts, candidates_C), y_N[valid_idx]",
       "log_joint_sweep(x_ND[fit_idx], pi_K, mu_KD, parts, candidates_C), y_N[fit_idx]")]),
    ("log-determinant from the Cholesky factor without the factor 2",
     [("log_det = 2.0 * np.log(np.diagonal(L_DD)).sum()", "log_det = np.log(np.diagonal(L_DD)).sum()")]),
    ("constant pixels left out of the log-determinant",
     [("log_det_C = np.log(lam_plus_c_AC).sum(axis=0) + constant_B.size * np.log(c_C)",
       "log_det_C = np.log(lam_plus_c_AC).sum(axis=0)")]),
    ("least probable class predicted",
     [("parts, c).argmax(axis=1)", "parts, c).argmin(axis=1)")]),
    ("validation part taken from the other end of the permutation",
     [("return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])",
       "return np.sort(perm[:-n_valid]), np.sort(perm[-n_valid:])")]),
    ("correct predictions counted instead of errors",
     [("np.count_nonzero(yhat_N != y_N)", "np.count_nonzero(yhat_N == y_N)")]),
]

ALTERNATIVE = [
    ("sigma_KDD[k] = diff_MD.T @ diff_MD / counts_K[k]",
     "sigma_KDD[k] = np.cov(x_ND[y_N == k], rowvar=False, bias=True).reshape(D, D)"),
    ("log_det = 2.0 * np.log(np.diagonal(L_DD)).sum()",
     "log_det = np.linalg.slogdet(sigma_KDD[k] + c_K[k] * np.eye(D))[1]"),
]


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    return build_zip(UNIT, tmp_path_factory.mktemp("zip"))


@pytest.mark.parametrize("name, edits", BUGS, ids=[b[0] for b in BUGS])
def test_bug_loses_points(autograder_zip, tmp_path, name, edits):
    submission = mutate_notebook(UNIT, NOTEBOOK, tmp_path, edits)
    assert lost_points(scores(autograder_zip, submission)), f"the bug {name!r} earned full marks"


def test_correct_alternative_earns_full_marks(autograder_zip, tmp_path):
    submission = mutate_notebook(UNIT, NOTEBOOK, tmp_path, ALTERNATIVE)
    short = lost_points(scores(autograder_zip, submission))
    assert not short, f"a correct alternative lost points: {short}"
