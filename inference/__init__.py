"""Serving and batch-scoring code: how the model answers a request."""
