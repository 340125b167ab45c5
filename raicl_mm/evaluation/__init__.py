"""UF1/UAR metric (Eq. 18-20) and pooling of LOSO fold predictions."""
from .metrics import (UF1UARMetric, atomic_write_json, atomic_write_text,
                      confusion_matrix, per_class_scores, uf1_uar)
from .pooling import (load_fold_predictions, missing_folds, pooled_report,
                      pooled_rows, sample_accounting)

__all__ = [
    'UF1UARMetric', 'atomic_write_json', 'atomic_write_text',
    'confusion_matrix', 'per_class_scores', 'uf1_uar',
    'load_fold_predictions', 'missing_folds', 'pooled_report', 'pooled_rows', 'sample_accounting'
]
