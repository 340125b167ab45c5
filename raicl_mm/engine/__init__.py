from .hooks import EpochSeedHook, TargetEMAHook

__all__ = ['EpochSeedHook', 'TargetEMAHook']
