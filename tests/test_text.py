"""Numbers and commands as the panels write them for people."""

from __future__ import annotations

from explorer.model.text import short_count


def test_counts_past_9999_are_short_and_rounded_half_up():
    assert [short_count(n) for n in (0, 7, 9_999)] == ["0", "7", "9999"]
    assert [short_count(n) for n in (10_000, 14_499, 14_500, 15_500, 141_790)] == ["10k", "14k", "15k", "16k", "142k"]
    assert [short_count(n) for n in (999_499, 999_500, 1_250_000, 1_350_000, 12_640_000)] == ["999k", "1.0M", "1.3M", "1.4M", "12.6M"]
