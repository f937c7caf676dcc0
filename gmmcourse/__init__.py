"""gmmcourse: a course kit on Gaussian generative models.

Sub-packages: :mod:`gmmcourse.data` (validated data loading and the tops build),
:mod:`gmmcourse.build` (student releases and autograder zips from the one solution source),
:mod:`gmmcourse.grading` (the hardened autograder shared by every unit).
"""

__version__ = "0.1.0"
