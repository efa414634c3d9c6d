"""The ONNX embedder's batching: similar lengths together, bounded rows and padded tokens."""

from __future__ import annotations

import random

from digest.relevance.embed import token_batches


def test_token_batches_cover_every_row_once_within_the_budget() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(5, 384) for _ in range(500)]
    batches = token_batches(lengths, 16, 16 * 256)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(500))
    for b in batches:
        assert 1 <= len(b) <= 16
        assert len(b) * max(lengths[i] for i in b) <= 16 * 256
    short = [b for b in batches if max(lengths[i] for i in b) <= 256]
    assert all(len(b) == 16 for b in short[:-1])  # at ≤ 256 tokens the batches stay full
    assert any(len(b) < 16 for b in batches if max(lengths[i] for i in b) > 300)  # longer rows: smaller batches
    widths = [max(lengths[i] for i in b) for b in batches]
    assert widths == sorted(widths)


def test_a_row_longer_than_the_budget_still_gets_a_batch() -> None:
    assert token_batches([10, 9000, 12], 4, 100) == [[0, 2], [1]]
