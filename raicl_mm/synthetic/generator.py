"""The synthetic set's generator, in one import.

The code lives in :mod:`raicl_mm.synthetic.generation`, one module per step
(face layout, motion, nuisances, planning, rendering, writing); this module
keeps the names every importer uses (``from raicl_mm.synthetic.generator
import SyntheticConfig, generate``) and is where to start reading.
"""
from .generation.classes import (DESIGNS, DISTRACTOR_REGIONS,  # noqa: F401
                                 PRIMARY_REGION, REGIONS, SECONDARY_REGIONS,
                                 SYNTHETIC_CLASSES, WEAK_REGIONS)
from .generation.config import SyntheticConfig  # noqa: F401
from .generation.face import SubjectFace, make_subject  # noqa: F401
from .generation.files import (FPS, FRAMES_DIR, GENERATOR_NAME,  # noqa: F401
                               GENERATOR_VERSION, MANIFEST_NAME, MARKER_NAME,
                               MASKS_DIR, SHEET_HEADER, SHEET_NAME)
from .generation.motion import (au_field, clip_field,  # noqa: F401
                                motion_mask, temporal_profile)
from .generation.planning import clips_per_subject, plan  # noqa: F401
from .generation.render import render_clip, render_face  # noqa: F401
from .generation.write import generate, logger, write_sheet  # noqa: F401

# its old private name, used by the benchmark's seed search (benchmarks/gpu)
_clips_per_subject = clips_per_subject

__all__ = [
    'SyntheticConfig', 'generate', 'plan', 'clips_per_subject', 'write_sheet',
    'SubjectFace', 'make_subject', 'render_face', 'render_clip', 'au_field',
    'clip_field', 'motion_mask', 'temporal_profile', 'SYNTHETIC_CLASSES',
    'DESIGNS', 'PRIMARY_REGION', 'SECONDARY_REGIONS', 'WEAK_REGIONS',
    'DISTRACTOR_REGIONS', 'REGIONS', 'GENERATOR_VERSION', 'GENERATOR_NAME',
    'SHEET_NAME', 'MANIFEST_NAME', 'MARKER_NAME', 'FRAMES_DIR', 'MASKS_DIR',
    'SHEET_HEADER', 'FPS',
]
