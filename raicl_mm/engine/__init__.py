from .config import ConfigError, check_config, data_settings
from .hooks import EpochSeedHook, TargetEMAHook
from .runner import RaICLRunner

__all__ = ['ConfigError', 'EpochSeedHook', 'RaICLRunner', 'TargetEMAHook',
           'check_config', 'data_settings']
