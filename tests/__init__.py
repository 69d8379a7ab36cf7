"""cohabit's tests: a package so shared helpers import as ``tests.helpers...`` and
``tests.integration...`` (the repository root is on ``sys.path``: pytest's ``pythonpath``)."""
