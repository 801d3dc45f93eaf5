"""Scripts that run inside SageMaker processing jobs (and, unchanged, in the local engine)."""
