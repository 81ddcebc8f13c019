"""The Flux Union-Pro v1 mode table and its checks (pure; the live test is in tests/server)."""

import pytest
from likeness.nodes.union_modes import FLUX_UNION_PRO_V1_MODES, UnionModeError, mode_index


def test_table_is_the_union_pro_v1_table():
    assert FLUX_UNION_PRO_V1_MODES == {
        "canny": 0, "tile": 1, "depth": 2, "blur": 3, "pose": 4, "gray": 5, "low quality": 6,
    }


def test_tile_is_one_not_the_sdxl_six():
    assert mode_index("tile", 7) == 1


def test_none_means_no_mode():
    assert mode_index("none", 0) is None


def test_controlnet_without_mode_embedding_is_refused_with_the_fix():
    with pytest.raises(UnionModeError, match="Union-Pro 2.0.*Fix"):
        mode_index("tile", 0)


def test_too_few_rows_is_refused():
    with pytest.raises(UnionModeError, match="only 4 rows"):
        mode_index("low quality", 4)


def test_unknown_mode_names_the_choices():
    with pytest.raises(UnionModeError, match="'tiles'"):
        mode_index("tiles", 7)
