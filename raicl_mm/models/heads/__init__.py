from .cam_consistency import CAMConsistencyHead, class_activation_maps
from .region_discovery import MultiRegionEncoder, RegionDiscoveryHead

__all__ = ['CAMConsistencyHead', 'class_activation_maps',
           'MultiRegionEncoder', 'RegionDiscoveryHead']
