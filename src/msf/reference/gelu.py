import numpy as np

_TWO_OVER_SQRT_PI = 1.1283791670955126
# Numerical Recipes' Chebyshev fit: erfc(z) = t exp(-z^2 + poly(t)), t = 1/(1 + z/2), |rel err| < 1.2e-7.
_ERFC_POLY = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
              0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277)


def erf(x: np.ndarray) -> np.ndarray:
    """Error function, elementwise, accurate to ~1.2e-7 absolute (float32 resolution); same dtype as x.

    NumPy has no erf and SciPy is not a run-time dependency. Computed in float64: a Taylor series
    near 0 (where 1 - erfc would cancel), the Chebyshev fit for erfc elsewhere.
    """
    z = np.abs(np.asarray(x, dtype=np.float64))
    # Taylor: erf(z) = 2/sqrt(pi) sum_n (-1)^n z^(2n+1) / (n! (2n+1)); 8 terms reach 1e-10 at z = 0.5.
    zs = np.minimum(z, 0.5)
    term = zs.copy()
    series = zs.copy()
    for n in range(1, 8):
        term = term * (-zs * zs) / n
        series = series + term / (2 * n + 1)
    small = _TWO_OVER_SQRT_PI * series
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.full_like(z, _ERFC_POLY[-1])
    for c in _ERFC_POLY[-2::-1]:
        poly = poly * t + c
    large = 1.0 - t * np.exp(-z * z + poly)
    result = np.where(z < 0.5, small, large)
    return np.copysign(result, x).astype(np.result_type(x, np.float32), copy=False)


# GELU(x) = x Phi(x), the exact erf form used by nn.GELU()
def gelu(x: np.ndarray) -> np.ndarray:
    """x (...) -> (...), same dtype."""
    return x * (0.5 * (1.0 + erf(x * np.asarray(0.7071067811865476, dtype=x.dtype))))
