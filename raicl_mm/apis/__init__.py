"""Inference on a user's own clips (mmaction2-style API).

- :class:`RaICLInferencer` -- built from a config and a checkpoint; called on
  a frame folder, a video or an array of frames.
- :func:`read_clip` -- the decoding step alone (it lives in
  :mod:`raicl_mm.datasets.user_clip`, with the selection and flow steps).
- :mod:`.provenance` -- what a checkpoint was trained on
  (``meta['raicl_train_data']``) and :func:`warn_if_synthetic` (the code
  lives in :mod:`raicl_mm.engine.provenance`).

mmaction2's own ``init_recognizer`` / ``inference_recognizer`` and its
inferencers give the same answer through the configs' test pipeline, whose
first step (:class:`raicl_mm.datasets.transforms.ClipInstances`) computes the
instances from a video or a frame folder with the same steps
(:class:`raicl_mm.datasets.user_clip.ClipSteps`).
"""
from .inference import (InferenceError, InferenceResult, RaICLInferencer,
                        init_inferencer, read_clip)
from .provenance import SyntheticCheckpointWarning, warn_if_synthetic

__all__ = ['InferenceError', 'InferenceResult', 'RaICLInferencer',
           'init_inferencer', 'read_clip', 'SyntheticCheckpointWarning',
           'warn_if_synthetic']
