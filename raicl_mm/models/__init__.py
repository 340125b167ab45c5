from .augment import BranchAugment, flip_back, hflip
from .data_preprocessor import InstanceDataPreprocessor
from .heads import (CAMConsistencyHead, MultiRegionEncoder,
                    RegionDiscoveryHead, class_activation_maps)
from .recognizer import Branch, RaICLRecognizer

__all__ = ['BranchAugment', 'flip_back', 'hflip', 'InstanceDataPreprocessor',
           'CAMConsistencyHead', 'MultiRegionEncoder', 'RegionDiscoveryHead',
           'class_activation_maps', 'Branch', 'RaICLRecognizer']
