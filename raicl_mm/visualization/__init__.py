"""Pictures: confusion matrices and optical-flow direction maps."""
from .confusion import plot_confusion
from .flow_colour import flow_to_colour, normalise_flow

__all__ = ['plot_confusion', 'flow_to_colour', 'normalise_flow']
