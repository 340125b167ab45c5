"""Inference on a user's own clips (mmaction2-style API).

- :class:`RaICLInferencer` -- built from a config and a checkpoint; called on
  a frame folder, a video or an array of frames.
- :func:`read_clip` -- the decoding step alone.
"""
from .inference import (InferenceError, InferenceResult, RaICLInferencer,
                        init_inferencer, read_clip)

__all__ = ['InferenceError', 'InferenceResult', 'RaICLInferencer',
           'init_inferencer', 'read_clip']
