from .dataset import MicroExpressionFlowDataset
from .folds import list_folds, resolve_fold
from .records import ClipRecord, ParseReport
from .transforms import (FlowFlip, FlowNormalize, FormatInstances,
                         SampleInstancePair)

__all__ = ['MicroExpressionFlowDataset', 'list_folds', 'resolve_fold',
           'ClipRecord', 'ParseReport', 'FlowFlip', 'FlowNormalize',
           'FormatInstances', 'SampleInstancePair']
