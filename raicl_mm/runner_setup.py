"""Glue shared by the command-line tools: config loading, data settings, folds.

The configs keep the data settings in top-level dicts (``data_roots``,
``ann_files``, ``flow_cfg``, ``sampling``, ...) so that ``--cfg-options
data_roots.casme2=...`` can change them; mmengine copies those values into the
dataloader dicts when the file is parsed, so :func:`sync_data_settings` pushes
the (possibly overridden) top-level values back into every
``MicroExpressionFlowDataset`` before the Runner builds anything.
"""
from __future__ import annotations

import os.path as osp
from typing import List, Optional, Sequence

from mmengine.config import Config

DATA_KEYS = ('protocol', 'data_roots', 'ann_files', 'exclude_file',
             'flow_cfg', 'sampling', 'flow_cache', 'flow_workers', 'inner_val')
DATASET_TYPE = 'MicroExpressionFlowDataset'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def add_common_args(parser, checkpoint_help: str) -> None:
    """Flags that train.py and test.py share with mmaction2's tools."""
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--fold', help='LOSO test subject: an index, a fold '
                        'key (casme2_01) or a subject id (01)')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help=f'allow a full (unsafe) unpickling of '
                        f'{checkpoint_help}; only for files you trust')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings, e.g. '
                        'data_roots.casme2=/data/CASME2/Cropped')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_tool_args(parser, argv=None):
    """Parse, and export LOCAL_RANK as mmengine's launchers expect."""
    import os
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


class ToolError(Exception):
    """A user error a tool reports in one line (exit status 2)."""


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config, apply ``--cfg-options`` and the data settings."""
    if not osp.isfile(path):
        raise ToolError(f'config file {path} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    sync_data_settings(cfg)
    return cfg


def _datasets(cfg: Config):
    for name in LOADERS:
        loader = cfg.get(name)
        if not loader:
            continue
        ds = loader.get('dataset')
        if ds is not None and ds.get('type') == DATASET_TYPE:
            yield name, ds


def sync_data_settings(cfg: Config) -> None:
    """Copy the top-level data settings into each flow dataset of the config."""
    for _, ds in _datasets(cfg):
        for key in DATA_KEYS:
            if key in cfg:
                ds[key] = cfg[key]


def prepare_embedded_data(cfg: Config) -> Optional[dict]:
    """Generate the synthetic default set if the config asks for it.

    ``synthetic = dict(out=..., **SyntheticConfig fields)``; a complete set
    made with the same parameters is reused, not regenerated.
    """
    spec = cfg.get('synthetic')
    if not spec:
        return None
    from raicl_mm.synthetic.generator import SyntheticConfig, generate
    spec = dict(spec)
    out = spec.pop('out')
    return generate(out, SyntheticConfig(**spec))


def load_records(cfg: Config):
    """ParseReport of the config's protocol (all subjects)."""
    from raicl_mm.datasets.sources import build_records
    return build_records(cfg.protocol, dict(cfg.data_roots),
                         dict(cfg.ann_files),
                         exclude_file=cfg.get('exclude_file'))


def protocol_folds(cfg: Config) -> List[str]:
    from raicl_mm.datasets.folds import list_folds
    return list_folds(load_records(cfg).records)


def apply_fold(cfg: Config, fold) -> str:
    """Select a LOSO fold: train on every other subject, score this one.

    Returns:
        str: The fold key (``<dataset>_<subject>``).
    """
    from raicl_mm.datasets.folds import resolve_fold
    try:
        key = resolve_fold(fold, protocol_folds(cfg))
    except ValueError as err:
        raise ToolError(str(err)) from None
    for name, ds in _datasets(cfg):
        ds['fold'] = key
        ds['split'] = 'train' if name == 'train_dataloader' else 'test'
    return key


def use_all_subjects(cfg: Config) -> None:
    """No fold: train on every subject and do not validate."""
    for name, ds in _datasets(cfg):
        ds['fold'] = None
        ds['split'] = 'all'
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg'):
        cfg[key] = None


def set_dump_file(cfg: Config, evaluator_key: str, path: str) -> None:
    """Make the UF1UARMetric(s) of an evaluator dump predictions to ``path``."""
    ev = cfg.get(evaluator_key)
    if not ev:
        return
    metrics: Sequence = ev if isinstance(ev, (list, tuple)) else [ev]
    for m in metrics:
        if m.get('type') == 'UF1UARMetric':
            m['dump_file'] = path


def use_inner_validation(cfg: Config, interval: int) -> None:
    """Select the checkpoint on held-out TRAINING subjects, never the test one.

    Train on ``inner_train``, validate every ``interval`` epochs on
    ``inner_val`` and keep the best UF1 checkpoint; the tool then scores the
    fold's test subject once with that checkpoint (``test_dataloader``).
    """
    for name, ds in _datasets(cfg):
        if name == 'train_dataloader':
            ds['split'] = 'inner_train'
        elif name == 'val_dataloader':
            ds['split'] = 'inner_val'
    cfg.train_cfg.val_begin = interval
    cfg.train_cfg.val_interval = interval
    cfg.default_hooks.checkpoint.save_best = 'UF1'
    cfg.default_hooks.checkpoint.rule = 'greater'
    for m in ([cfg.val_evaluator] if isinstance(cfg.val_evaluator, dict)
              else cfg.val_evaluator):
        m.pop('dump_file', None)


def add_tensorboard_if_available(cfg: Config) -> bool:
    """Log to TensorBoard too when it is installed (local files otherwise)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    vis = cfg.get('visualizer')
    if not vis:
        return False
    backends = list(vis.get('vis_backends') or [])
    if not any(b.get('type') == 'TensorboardVisBackend' for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
        vis['vis_backends'] = backends
    return True


def run_with_runner(build_cfg, args, action) -> int:
    """Build the config (a ToolError is a one-line message, exit 2), then the
    Runner, then ``action(runner, args)``; always closes a process group."""
    import sys
    from mmengine.runner import Runner
    try:
        cfg = build_cfg(args)
    except ToolError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    runner = Runner.from_cfg(cfg)
    try:
        action(runner, args)
    finally:
        # gloo ranks that exit without closing the group abort (exit -6).
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0
