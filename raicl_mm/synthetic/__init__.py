"""The embedded synthetic micro-expression set: generator and presets.

Written in the CASME II layout and read by the real CASME II parser, with its
ground truth (motion masks, true apex) kept beside the frames.
"""
from .generator import SyntheticConfig, generate

__all__ = ['SyntheticConfig', 'generate']
