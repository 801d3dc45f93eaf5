"""Model Monitor's analyzer, locally: the job program a QualityCheck step runs (``analyzer``), which reads a
dataset as the analyzer's ``dataset_format`` says (``datasets``), suggests a baseline (``statistics.json`` and
``constraints.json``) and checks data against one (``constraint_violations.json``), for data quality
(``data_quality``) and model quality (``model_quality``), in the formats Model Monitor documents."""
