"""The exceptions msf raises. Every loader and API path uses these, in both backends."""


class Error(Exception):
    """Base class of every error msf raises on purpose."""


class WeightsError(Error, ValueError):
    """A weights file or checkpoint is malformed, truncated, or does not describe a MixSynthFormer."""


class InputError(Error, ValueError):
    """Keyframes (or another argument) have the wrong shape, dtype or values."""


class BackendError(Error, RuntimeError):
    """The requested backend is not available in this installation."""
