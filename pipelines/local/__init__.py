"""The local engine: runs a pipeline definition JSON on this machine, with no AWS and no Docker.

Layout: ``engine`` orders steps and records their results; ``dispatch`` maps a step
``Type`` to its executor in ``executors/``; ``expressions`` and ``conditions`` are pure
functions over a resolution context; ``store`` owns the s3:// <-> local path mapping;
``registry`` is the SQLite model registry; ``executions`` persists execution records;
``job_runtime`` starts every job and serve program (in a bubblewrap container of its own).
"""
