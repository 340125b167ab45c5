"""Pictures: confusion matrices and optical-flow direction maps."""
from .confusion import plot_confusion
from .flow_colour import flow_to_colour, normalise_flow

__all__ = ['plot_confusion', 'flow_to_colour', 'normalise_flow']
from .cam import (cam_maps, grad_cam, guided_backprop, guided_grad_cam,  # noqa: E402
                  instance_strip, mask_mass, overlay, predict_logits)
__all__ += ['cam_maps', 'grad_cam', 'guided_backprop', 'guided_grad_cam',
            'instance_strip', 'mask_mass', 'overlay', 'predict_logits']
