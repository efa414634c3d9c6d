"""Relevance: embedders + a per-topic classifier (train / predict / eval / explain)."""
