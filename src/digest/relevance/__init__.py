"""Relevance: embedders + a per-topic classifier (train / predict / eval / explain)."""

#: word pieces of "title. abstract" the tuned encoder reads (docs/RELEVANCE.md)
FT_MAX_TOKENS = 256
