"""SageMaker Clarify's processing job, locally: the job program a ClarifyCheck step runs (``analysis``), reading
the ``analysis_config.json`` the SDK writes and the dataset, computing the bias metrics the config asks for with
Clarify's own open-source library (``smclarify``, in an environment of its own: ``requirements.txt``), writing
``analysis.json`` in Clarify's shape and, against a baseline, ``constraint_violations.json`` (``drift``)."""
