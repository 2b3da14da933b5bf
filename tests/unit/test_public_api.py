"""The package's public surface is deliberate: sorted, complete, and importable."""

from __future__ import annotations

import workers


def test_all_is_sorted_and_importable() -> None:
    assert workers.__all__ == sorted(workers.__all__)
    for name in workers.__all__:
        assert getattr(workers, name) is not None


def test_every_error_derives_from_the_root() -> None:
    errors = [getattr(workers, n) for n in workers.__all__ if n.endswith("Error")]
    assert errors
    assert all(issubclass(error, workers.TalonStreamError) for error in errors)
