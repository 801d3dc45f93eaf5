"""Lead-scoring SageMaker pipeline: definition, CLI and local engine."""
