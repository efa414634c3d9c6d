"""arxiv-digest: a daily bilingual digest of the arXiv papers a reader cares about."""

__version__ = "0.1.0"
