"""The names msf.sequence held before it was split, for code that imports them from here.

Where they live now: the keyframe grid in msf.keyframes, the pose convention's normalisation in
msf.normalise, input checks in msf.inputs, the incremental engine in msf.track, offline recovery in
msf.recover (its tuning constants WINDOWS_PER_CALL and SCAN_ROWS are read there: set them there) and
the online Stream in msf.stream.
"""
from .backend import RefineWindows
from .inputs import FLOAT32_MAX, MIN_SCORE
from .keyframes import check_n_frames, check_stride, keyframe_count, keyframe_indices
from .normalise import Normaliser, check_image_size
from .recover import recover
from .stream import Stream
from .track import Track

__all__ = ["FLOAT32_MAX", "MIN_SCORE", "Normaliser", "RefineWindows", "Stream", "Track", "check_image_size",
           "check_n_frames", "check_stride", "keyframe_count", "keyframe_indices", "recover"]
