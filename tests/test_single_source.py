"""One source for each shared fact: the version (pyproject.toml), the official configurations
(msf.config.OFFICIAL_CONFIGS), the FLOP formula (msf.flops) and the linear baseline (msf.baselines)."""
import importlib.metadata
import re
from pathlib import Path

import numpy as np
import pytest

import msf
from helpers import OFFICIAL, ROOT
from msf import baselines, config as config_, flops, plot, pose


def pyproject_version() -> str:
    path = ROOT / "pyproject.toml"
    if not path.exists():
        pytest.skip("not a source checkout (no pyproject.toml)")
    return re.search(r'^version = "([^"]+)"$', path.read_text(), re.MULTILINE).group(1)


def test_version_is_pyprojects():
    assert msf.__version__ == importlib.metadata.version("msf") == pyproject_version()


def test_version_falls_back_to_pyproject_in_a_source_checkout(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    if not (Path(msf.__file__).resolve().parents[2] / "pyproject.toml").exists():
        pytest.skip("msf is not imported from a source checkout")
    assert msf._version() == pyproject_version()


def test_cmake_project_version_is_pyprojects():
    """CMake's PROJECT_VERSION is what the C API's msf_version() returns (cpp/tests/test_c_api.cpp checks that);
    msf._core does not expose msf_version, so the built tree's CMake cache stands in for it."""
    cache = ROOT / "build" / "editable" / "CMakeCache.txt"
    if not cache.exists():
        pytest.skip("no CMake build tree at build/editable")
    found = re.search(r"^CMAKE_PROJECT_VERSION:\w+=(.*)$", cache.read_text(errors="replace"), re.MULTILINE)
    if found is None:
        pytest.skip("the CMake cache does not record CMAKE_PROJECT_VERSION")
    assert found.group(1) == pyproject_version()


def test_official_configs_have_one_table():
    assert OFFICIAL is config_.OFFICIAL_CONFIGS
    # msf.pose.OFFICIAL is the pose convention per P: exactly the P of the official configurations
    assert set(pose.OFFICIAL) == {P for _, _, P, _, _ in config_.OFFICIAL_CONFIGS.values()}
    c = config_.official_config(*config_.OFFICIAL_CONFIGS["h36m"])
    assert (c.T, c.d_t, c.d_c, c.ffn_hidden) == (101, 25, 64, 128)


def test_flops_formula_is_the_count():
    """FLOPS_FORMULA (printed by `msf info` and benchmarks/speed.py) against flops_per_window, term by term."""
    assert flops.FLOPS_FORMULA.startswith("2 [T(Q+1)P + 2TPC + L (")
    for name, spec in config_.OFFICIAL_CONFIGS.items():
        for reduce in ((4, 1), (1, 8)):
            c = config_.official_config(*spec, *reduce)
            T, C, h, F = c.T, c.C, c.reweight_hidden, c.ffn_hidden
            block = (T * C * c.d_t * (2 + (c.d_t < T)) + 2 * T * c.se_t + T * C * c.d_c * (2 + (c.d_c < C))
                     + 2 * C * c.se_c + 3 * T * h + T * C * C + 2 * T * C * F)
            assert flops.flops_per_window(c) == 2 * (T * c.n_keyframes * c.P + 2 * T * c.P * C + c.L * block), name


def test_linear_baseline_is_one_function():
    assert plot.linear_interpolation is baselines.linear_interpolation
    idx = np.array([0, 4, 8])
    kf = np.arange(3 * 2 * 3, dtype=np.float64).reshape(3, 2, 3) ** 2
    out = baselines.linear_interpolation(kf, idx, 9)
    expected = np.stack([np.interp(np.arange(9), idx, kf.reshape(3, -1)[:, i]) for i in range(6)], axis=1)
    np.testing.assert_array_equal(out, expected.reshape(9, 2, 3))
    kf[1, 0, 0] = np.nan  # a missing value is interpolated from the others
    assert baselines.linear_interpolation(kf, list(idx), 9)[4, 0, 0] == pytest.approx((kf[0, 0, 0] + kf[2, 0, 0]) / 2)
