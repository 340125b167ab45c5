"""Spotting micro- and macro-expressions in long videos, then recognising them.

Importable on its own (``import raicl_mm.spotting`` registers the spotters in
:data:`raicl_mm.spotting.registry.SPOTTERS`):

* :mod:`~raicl_mm.spotting.metrics` -- the MEGC spotting metric and STRS;
* :mod:`~raicl_mm.spotting.features` -- window flows of a long video (streamed);
* :mod:`~raicl_mm.spotting.peaks` -- score curve -> intervals;
* :mod:`~raicl_mm.spotting.baseline` -- ``FlowPeakSpotter`` (training-free);
* :mod:`~raicl_mm.spotting.learned` -- ``LearnedFlowSpotter`` (SOFTNet-like);
* :mod:`~raicl_mm.spotting.str_protocol` -- spot, cut, recognise with Ra-ICL,
  score, leave-one-subject-out, timelines.
"""
from .baseline import FlowPeakSpotter
from .learned import LearnedFlowSpotter
from .metrics import analysis_scores, interval_iou, spotting_scores, str_score
from .registry import SPOTTERS, build_spotter

__all__ = ['FlowPeakSpotter', 'LearnedFlowSpotter', 'SPOTTERS', 'build_spotter',
           'analysis_scores', 'interval_iou', 'spotting_scores', 'str_score']
