"""Preprocessing: decode (PyAV), sample frames, detect faces (MTCNN), crop, cache.

``video``: decoding and sampling; ``faces``: detection, box logic and crops;
``cache``: ``CropParams`` and the content-addressed ``CropCache``; ``pipeline``: the driver
(``preprocess``) and ``reference_video_ids`` (which video's boxes each video reuses).
"""

from dfbench.benchmark.preprocess.cache import CACHE_FORMAT_VERSION, CropCache, CropParams, file_identity
from dfbench.benchmark.preprocess.pipeline import PreprocessReport, preprocess, reference_video_ids

__all__ = [
    "CACHE_FORMAT_VERSION",
    "CropCache",
    "CropParams",
    "PreprocessReport",
    "file_identity",
    "preprocess",
    "reference_video_ids",
]
