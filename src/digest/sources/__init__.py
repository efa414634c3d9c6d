"""arXiv sources: the daily RSS announcement and the API for date ranges and id batches."""
