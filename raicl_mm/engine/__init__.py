from .config import ConfigError, check_config, data_settings
from .hooks import EpochSeedHook, TargetEMAHook, TrainDataProvenanceHook
from .vis_hook import RaICLVisualizationHook
from .runner import RaICLRunner

__all__ = ['ConfigError', 'EpochSeedHook', 'RaICLRunner',
           'RaICLVisualizationHook', 'TargetEMAHook', 'TrainDataProvenanceHook',
           'check_config', 'data_settings']
