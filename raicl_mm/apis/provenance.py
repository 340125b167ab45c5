"""What a checkpoint was trained on: :mod:`raicl_mm.engine.provenance`.

Training writes it (an engine hook) and inference reads it, so it lives in
``engine/``, below both; this module keeps the names for the importers of
``raicl_mm.apis.provenance``.
"""
from raicl_mm.engine.provenance import (REAL, SYNTHETIC,  # noqa: F401
                                        TRAIN_DATA_KEY,
                                        SyntheticCheckpointWarning,
                                        checkpoint_meta, is_synthetic_data,
                                        train_data_kind, warn_if_synthetic)

__all__ = ['TRAIN_DATA_KEY', 'SYNTHETIC', 'REAL',
           'SyntheticCheckpointWarning', 'is_synthetic_data',
           'train_data_kind', 'checkpoint_meta', 'warn_if_synthetic']
