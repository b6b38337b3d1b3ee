"""Shape recipes: valid shapes near the target N and the aspect ratio, clear errors otherwise."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalinglab.errors import ConfigError
from scalinglab.model.config import ModelConfig
from scalinglab.model.counting import count_params
from scalinglab.model.shapes import ASPECT_BAND, shape_for_params, shape_ladder


@settings(max_examples=60, deadline=None)
@given(
    target=st.floats(min_value=3e5, max_value=3e9),
    aspect=st.sampled_from([24.0, 32.0, 64.0, 100.0]),
    head_dim=st.sampled_from([16, 32, 64]),
)
def test_shape_is_valid_and_near_the_target(target: float, aspect: float, head_dim: int) -> None:
    try:
        cfg = shape_for_params(target, aspect_ratio=aspect, head_dim=head_dim)
    except ConfigError:  # allowed only where the grid is coarse: a few layers of a few heads
        assert target < 12 * 8 * (8 * head_dim) ** 2
        return
    assert cfg.n_layer >= 2
    assert cfg.d_model % head_dim == 0 and cfg.head_dim == head_dim
    assert abs(count_params(cfg)["N"] / target - 1) <= 0.25
    assert 1 / ASPECT_BAND <= cfg.d_model / cfg.n_layer / aspect <= ASPECT_BAND


def test_no_nearby_shape_is_better() -> None:
    """Brute force over the grid: nothing within the aspect band beats the recipe's N by much."""
    target, aspect, head_dim = 2e6, 32.0, 32
    cfg = shape_for_params(target, aspect_ratio=aspect, head_dim=head_dim)
    miss = abs(math.log(count_params(cfg)["N"] / target))
    for n_layer in range(2, 40):
        for d_model in range(head_dim, 1024, head_dim):
            if 0.5 <= d_model / n_layer / aspect <= 2 and abs(math.log(d_model / n_layer / aspect)) < 0.1:
                other = ModelConfig(n_layer=n_layer, d_model=d_model, n_head=d_model // head_dim)
                assert miss <= abs(math.log(count_params(other)["N"] / target)) + 0.05


def test_large_targets_hit_N_and_aspect_closely() -> None:
    cfg = shape_for_params(1e8, aspect_ratio=64, head_dim=64)
    assert count_params(cfg)["N"] == pytest.approx(1e8, rel=0.02)
    assert cfg.d_model / cfg.n_layer == pytest.approx(64, rel=0.15)


def test_base_fields_and_conventions() -> None:
    base = ModelConfig(n_ctx=64, vocab_size=1000, dropout=0.1, tie_embeddings=False, d_ff=256, d_model=128)
    cfg = shape_for_params(4e6, aspect_ratio=32, head_dim=32, base=base, convention="N_total")
    assert (cfg.n_ctx, cfg.vocab_size, cfg.dropout, cfg.tie_embeddings) == (64, 1000, 0.1, False)
    assert cfg.d_ff == 2 * cfg.d_model  # the base's d_ff / d_model ratio is kept
    assert count_params(cfg)["N_total"] == pytest.approx(4e6, rel=0.25)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_N": -5}, "target N must be positive"),
        ({"target_N": 1e6, "aspect_ratio": 0}, "aspect_ratio"),
        ({"target_N": 1e6, "head_dim": 0}, "head_dim"),
        ({"target_N": 1e6, "convention": "params"}, "convention"),
        ({"target_N": 1000, "head_dim": 64}, r"no shape with N within 25% of 1,000 .* nearest is n_layer=2, d_model=64"),
    ],
)
def test_impossible_requests_raise_one_line_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        shape_for_params(**kwargs)
    assert "\n" not in str(err.value)


def test_ladder_is_increasing_and_distinct() -> None:
    ladder = shape_ladder(1e5, 1e7, 8, aspect_ratio=32, head_dim=32)
    ns = [count_params(c)["N"] for c in ladder]
    assert ns == sorted(ns) and len(set(ns)) == len(ns) >= 6
    assert ns[0] == pytest.approx(1e5, rel=0.25) and ns[-1] == pytest.approx(1e7, rel=0.25)
