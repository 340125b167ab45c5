"""Motion estimation: frames -> onset->frame flow instances, and their cache.

Knows nothing of labels, folds or datasets: it takes a clip record (its frame
paths) and a :class:`FlowConfig` and returns ``[u, v, strain]`` instances.

- :mod:`.config`      :class:`FlowConfig`, every setting that changes a flow
- :mod:`.face`        face crop on the onset, reused for every frame
- :mod:`.tvl1`        OpenCV Dual TV-L1 / Farneback and optical strain (Eq. 1-2)
- :mod:`.tvl1_torch`  the batched PyTorch TV-L1 (CPU / CUDA)
- :mod:`.instances`   a clip's frames -> its instance set
- :mod:`.cache`       the on-disk cache, keyed by every flow setting; the
                      positions of an instance set are handed to it
- :mod:`.cache_pairs` one pair file: its name, key, bytes, safe read/write
- :mod:`.cache_fill`  filling the cache for many clips (process pool)
- :mod:`.batched`     filling the cache with the batched solver
- :mod:`.cache_io`    what the cache and the fills share
"""
from .config import FACE_CROPS, FLOW_METHODS, FlowConfig
from .instances import extract_instance_set, load_clip_frames
from .config import FARNEBACK_PARAMS
from .tvl1 import compute_flow, flow_instance, optical_strain, set_worker_threads

__all__ = ['FARNEBACK_PARAMS', 'FACE_CROPS', 'set_worker_threads', 'FLOW_METHODS', 'FlowConfig', 'compute_flow',
           'extract_instance_set', 'flow_instance', 'load_clip_frames',
           'optical_strain']
