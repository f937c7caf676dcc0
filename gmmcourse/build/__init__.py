"""Student releases and autograder zips, generated from the one hand-written source in ``solutions/``.

The modules, in pipeline order:

- :mod:`~gmmcourse.build.units`: a unit's folders and its declaration, validated when loaded;
- :mod:`~gmmcourse.build.strip`: solution regions become stubs (``starter_code/<unit>/``);
- :mod:`~gmmcourse.build.notebook`: the release folder, nbgrader's notebooks (``assignments/<unit>/``);
- :mod:`~gmmcourse.build.public_checks`: the public cases students run locally;
- :mod:`~gmmcourse.build.package`: the Gradescope and student zips (``dist/``), and grading through one;
- :mod:`~gmmcourse.build.pipeline`: all of these into a staging folder, then into the repository;
- :mod:`~gmmcourse.build.drift`: when a freshly generated file counts as the committed one;
- :mod:`~gmmcourse.build.verify`: self-grade, drift and leak checks (``gmmcourse check``);
- :mod:`~gmmcourse.build.progress`: the progress lines of long commands.
"""
