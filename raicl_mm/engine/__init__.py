from .hooks import TargetEMAHook

__all__ = ['TargetEMAHook']
