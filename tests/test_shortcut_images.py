"""Tests for cliplab.shortcut.images: rendering, footprint, saturation, probes and a tiny end-to-end run."""

from __future__ import annotations

import numpy as np
import pytest

from cliplab import shortcut as sc
from cliplab.shortcut import images as si


@pytest.mark.parametrize("ratio", [1, 2, 3, 5])
def test_footprint_ratio_and_non_overlap(ratio: int) -> None:
    cfg = si.ImageConfig(footprint_ratio=ratio)
    z = np.array([[0.5, -0.4], [1.0, 1.0], [-2.0, 0.3]])
    images = si.render(z, cfg, np.random.default_rng(0))
    for img in images:
        area_s, area_c = (img[0] > 0).sum(), (img[1] > 0).sum()
        assert area_c == cfg.base**2 and area_s == ratio * area_c
        assert not np.any((img[0] > 0) & (img[1] > 0))


def test_brightness_encodes_latent_min_max() -> None:
    cfg = si.ImageConfig()
    mu_s, mu_c = sc.latent_mean(cfg.rho_s), sc.latent_mean(cfg.rho_c)
    z = np.array([[0.0, 1.5 * mu_c]])
    img = si.render(z, cfg, np.random.default_rng(1))[0]
    assert img[0].max() == pytest.approx(0.5) and img[1].max() == pytest.approx(0.75)
    assert si.brightness(np.array([-3 * mu_s, 3 * mu_s, 10.0]), mu_s).tolist() == [0.0, 1.0, 1.0]


def test_saturated_probes_are_the_outer_ring() -> None:
    z = sc.probe_grid(0.8, 0.9)
    sat = si.saturated(z, 0.8, 0.9)
    assert sat.sum() == 900 - 28 * 28
    kept = z[~sat]
    assert sc.reliance(np.sign(kept[:, 0]), kept) == 1.0 and sc.reliance(np.sign(kept[:, 1]), kept) == -1.0


def test_rendering_is_deterministic_and_positions_vary() -> None:
    cfg = si.ImageConfig(footprint_ratio=2)
    z = np.zeros((20, 2)) + 0.3
    a = si.render(z, cfg, np.random.default_rng(5))
    b = si.render(z, cfg, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert len({a[i, 0].argmax() for i in range(20)}) > 5


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="fit"):
        si.ImageConfig(footprint_ratio=8)
    with pytest.raises(ValueError, match="rho_s"):
        si.ImageConfig(rho_s=1.0)
    with pytest.raises(ValueError, match="feature"):
        si.single_feature_control(si.ImageConfig(), "background", 0)


def test_tiny_image_cell_runs_and_is_deterministic() -> None:
    cfg = si.ImageConfig(footprint_ratio=3, n_train=256, n_test=200, epochs=1, channels=4)
    a = si.run_image_cell(cfg, 0)
    b = si.run_image_cell(cfg, 0)
    assert a == b
    assert a["n_probes"] == 784 and abs(a["reliance_model"]) <= 1.0
    assert a["bias"] == pytest.approx(a["reliance_model"] - a["reliance_lda"])
    assert 0.8 < a["acc_lda"] <= 1.0


def test_single_feature_control_learns_the_core() -> None:
    res = si.single_feature_control(si.ImageConfig(n_test=400), "core", 0)  # the notebook's default control
    assert res["acc_model"] > res["rho"] - 0.05
