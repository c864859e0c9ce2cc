"""The exceptions msf raises, and the one rule that chooses among them, in both backends and on every path.

The rule: the class says what is wrong, so that the caller knows what to fix.

- ``WeightsError``: the model is bad: its file or bytes are missing, unreadable, malformed, truncated, over
  a cap, inconsistent, non-finite, or not a MixSynthFormer. ``CheckpointError`` (a ``WeightsError``) is the
  same for a torch checkpoint given to ``convert``; ``LegacyFormatError`` (a ``CheckpointError``) is a
  pre-1.6 ``torch.save`` file, which must be re-saved.
- ``InputError``: something the caller passed is bad: keyframes of the wrong shape, dtype or values (NaN,
  infinite, beyond float32), an argument of the wrong type or value (``threads``, ``stride``,
  ``n_frames``, ``image_size``, ``jobs``, a pose option of ``convert``), a name that names nothing (a
  backend, a skeleton, a sequence), an environment variable set to such a value (``MSF_BACKEND``,
  ``MSF_ISA``), an input file that cannot be read as keyframes. A forward that overflows float32 (the C++
  core's ``NumericError``) is an ``InputError`` too: it is found on the caller's keyframes and fixed by
  giving them in the model's units.
- ``BackendError``: the request is valid but this installation cannot carry it out: ``backend="cpp"`` where
  the C++ extension is not built, or an optional dependency that is not installed (matplotlib for plots).
- ``Error``: the base of all of them. ``OSError`` from the file system passes through unchanged.

An unknown backend name is a bad argument, so an ``InputError``. It is raised as ``UnknownBackendError``,
which is also a ``BackendError``, because msf raised ``BackendError`` for it before this rule; new code
should catch ``InputError``.

The C++ core and the C API follow the same rule (cpp/include/msf/errors.hpp, msf.h):

=====================  =====================  ====================================================
C++                    C status               Python
=====================  =====================  ====================================================
``msf::WeightsError``  ``MSF_ERR_WEIGHTS``    ``WeightsError``
``msf::InputError``    ``MSF_ERR_INPUT``      ``InputError``
(``msf::InputError``)  ``MSF_ERR_ARGUMENT``   (``InputError``): the C call itself is malformed: a NULL
                                              pointer, buffer lengths that do not match the batch,
                                              overlapping buffers, found by the C layer before any
                                              data is read; C++ and Python throw ``InputError`` there
``msf::NumericError``  ``MSF_ERR_NUMERIC``    ``InputError``, see above
``std::bad_alloc``     ``MSF_ERR_MEMORY``     ``MemoryError``
(none)                 (none)                 ``BackendError``: a linked C or C++ library is there
=====================  =====================  ====================================================
"""


class Error(Exception):
    """Base class of every error msf raises on purpose."""


class WeightsError(Error, ValueError):
    """The model is bad: its file or bytes are missing, malformed, truncated, over a cap, or do not describe
    a MixSynthFormer."""


class CheckpointError(WeightsError):
    """A checkpoint is refused: not a torch.save zip archive, malformed, over a cap, or it needs code."""


class LegacyFormatError(CheckpointError):
    """The file is a pre-1.6 torch.save (a bare pickle stream), which this reader does not parse."""


class InputError(Error, ValueError):
    """Something the caller passed is bad: keyframes of the wrong shape, dtype or values, an argument of the
    wrong type or value (a thread count, an option), or a name that names nothing."""


class BackendError(Error, RuntimeError):
    """The request is valid, but this installation cannot carry it out: the C++ extension is not built, or
    an optional dependency is missing."""


class UnknownBackendError(InputError, BackendError):
    """backend= or MSF_BACKEND names no backend msf has: a bad argument (InputError), and a BackendError as
    well because msf raised BackendError for it before."""
