import numpy as np

_TWO_OVER_SQRT_PI = 1.1283791670955126
# Numerical Recipes' Chebyshev fit: erfc(z) = t exp(-z^2 + poly(t)), t = 1/(1 + z/2), |rel err| < 1.2e-7.
_ERFC_POLY = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
              0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277)


def _erf_erfc(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(erf(x), erfc(x)) in float64, each accurate to ~1.2e-7 relative (erf near 0 to 1e-10).

    NumPy has no erf and SciPy is not a run-time dependency. A Taylor series near 0 (where 1 - erfc
    would cancel), the Chebyshev fit for erfc elsewhere; erfc of negative x as 2 - erfc(-x).
    """
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x)
    # Taylor: erf(z) = 2/sqrt(pi) sum_n (-1)^n z^(2n+1) / (n! (2n+1)); 8 terms reach 1e-10 at z = 0.5.
    zs = np.minimum(z, 0.5)
    term = zs.copy()
    series = zs.copy()
    for n in range(1, 8):
        term = term * (-zs * zs) / n
        series = series + term / (2 * n + 1)
    taylor = _TWO_OVER_SQRT_PI * series
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.full_like(z, _ERFC_POLY[-1])
    for c in _ERFC_POLY[-2::-1]:
        poly = poly * t + c
    tail = t * np.exp(-z * z + poly)                    # erfc(|x|) for |x| >= 0.5
    small = z < 0.5
    erf_abs = np.where(small, taylor, 1.0 - tail)
    erfc_abs = np.where(small, 1.0 - taylor, tail)
    return np.copysign(erf_abs, x), np.where(x >= 0, erfc_abs, 2.0 - erfc_abs)


def erf(x: np.ndarray) -> np.ndarray:
    """Error function, elementwise; float32 in -> float32 out, float64 -> float64 (accuracy ~1.2e-7)."""
    return _erf_erfc(x)[0].astype(np.result_type(x, np.float32), copy=False)


def erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function 1 - erf(x), accurate to ~1.2e-7 relative even where it is tiny."""
    return _erf_erfc(x)[1].astype(np.result_type(x, np.float32), copy=False)


# GELU(x) = x Phi(x) = x erfc(-x / sqrt 2) / 2 (eq. 9's MLPs; nn.GELU()'s exact form), written with erfc:
# 1 + erf(x / sqrt 2) cancels for negative x, erfc does not
def gelu(x: np.ndarray) -> np.ndarray:
    """x (...) -> (...), same dtype."""
    phi = 0.5 * _erf_erfc(np.asarray(x, dtype=np.float64) * -0.7071067811865476)[1]
    return x * phi.astype(x.dtype, copy=False)
