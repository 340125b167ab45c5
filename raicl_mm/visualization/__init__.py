"""Pictures: confusion matrices, optical-flow direction maps, CAM strips.

- :mod:`.confusion`    confusion matrices (Fig. 4 / 11)
- :mod:`.flow_colour`  flow direction colour maps (Algorithm 1)
- :mod:`.cam`          CAM / Grad-CAM / Guided Grad-CAM maps and the strip
- :mod:`.strips`       attention strips over a data set (tools/visualize.py)
- :mod:`.publish`      every picture also into the run's mmengine visualizer
"""
from .confusion import plot_confusion
from .flow_colour import flow_to_colour, normalise_flow

__all__ = ['plot_confusion', 'flow_to_colour', 'normalise_flow']
from .cam import (cam_maps, grad_cam, guided_backprop, guided_grad_cam,  # noqa: E402
                  instance_strip, mask_mass, overlay, predict_logits)
from .publish import add_image, current_visualizer  # noqa: E402
__all__ += ['cam_maps', 'grad_cam', 'guided_backprop', 'guided_grad_cam',
            'instance_strip', 'mask_mass', 'overlay', 'predict_logits',
            'add_image', 'current_visualizer']
