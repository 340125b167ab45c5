"""What tools/train.py and tools/test.py share: flags, fold, one-line errors.

The tools keep mmaction2's semantics: the config is read, the tool derives its
settings (work dir, fold, dump file, AMP, resume), and ``--cfg-options`` are
merged LAST, so they win over everything the tool derived. ``--fold`` only
sets the fold of the three loaders.
"""
from __future__ import annotations

import os
import os.path as osp
import sys
from typing import Callable, Optional, Sequence

from .config import (ConfigError, data_settings, fold_keys, resolve_folds,
                     set_data_setting)


class ToolError(Exception):
    """A user error a tool reports in one line (exit status 2)."""


def add_common_args(parser, checkpoint_help: str) -> None:
    """Flags that train.py and test.py share with mmaction2's tools."""
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--fold', help='LOSO test subject: an index, a fold '
                        'key (casme2_01) or a subject id (01); several, '
                        'comma-separated, for a subject-group fold; "all" '
                        'trains on every subject. Default: the config\'s fold')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help=f'allow a full (unsafe) unpickling of '
                        f'{checkpoint_help}; only for files you trust')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in mmaction2 style, e.g. '
                        'train_dataloader.dataset.flow_cfg.size="(64,64)"; '
                        'merged last, so they win')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_tool_args(parser, argv=None):
    """Parse, and export LOCAL_RANK as mmengine's launchers expect."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def read_config(path: str):
    """``Config.fromfile`` with a one-line error for a missing/broken file."""
    from mmengine.config import Config
    if not osp.isfile(path):
        raise ToolError(f'config file {path} does not exist')
    try:
        return Config.fromfile(path)
    except Exception as err:  # noqa: BLE001 - a syntax or key error in the file
        raise ToolError(f'config file {path}: {type(err).__name__}: '
                        f'{str(err).splitlines()[0] if str(err) else ""}'
                        ) from None


def apply_fold(cfg, fold) -> Optional[str]:
    """Select the fold of every loader; returns a name for the work dir.

    ``fold='all'`` trains on every subject (no scoring). A list (``a,b``) is
    a subject-group fold: train on the others, score the listed subjects.
    """
    if str(fold).strip().lower() == 'all':
        set_data_setting(cfg, 'fold', None)
        for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            ds = (cfg.get(name) or {}).get('dataset')
            if ds is not None:
                ds['split'] = 'all'
        cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
        return 'all'
    try:
        key = resolve_folds(fold, fold_keys(cfg))
    except (ValueError, OSError, ConfigError) as err:
        raise ToolError(str(err)) from None
    set_data_setting(cfg, 'fold', key)
    return key if isinstance(key, str) else '+'.join(key)


def default_fold_name(cfg) -> Optional[str]:
    """The config's own fold as a work-dir name (None: no fold set)."""
    fold = data_settings(cfg).get('fold')
    if fold is None:
        return None
    try:
        key = resolve_folds(fold, fold_keys(cfg))
    except (ValueError, OSError, ConfigError) as err:
        raise ToolError(str(err)) from None
    return key if isinstance(key, str) else '+'.join(key)


def default_work_dir(config_path: str, fold_name: Optional[str]) -> str:
    name = osp.splitext(osp.basename(config_path))[0]
    return osp.join('work_dirs', name) + (f'/fold_{fold_name}'
                                          if fold_name else '')


def set_dump_file(cfg, evaluator_key: str, path: str,
                  overwrite: bool = True) -> None:
    """Make the UF1UARMetric(s) of an evaluator dump predictions to ``path``."""
    ev = cfg.get(evaluator_key)
    if not ev:
        return
    metrics: Sequence = ev if isinstance(ev, (list, tuple)) else [ev]
    for m in metrics:
        if m.get('type') == 'UF1UARMetric' and (overwrite
                                                or not m.get('dump_file')):
            m['dump_file'] = path


TEST_MODES = ('middle', 'ensemble')


def set_test_mode(cfg, mode: str) -> int:
    """Score the middle instance (A.1.3) or the ensemble over every instance.

    Sets ``ensemble`` (and ``pad_to`` = the loader's ``sampling.num_instances``,
    so that sets of any size batch) on the test-mode ``SampleInstancePair`` of
    every scoring pipeline: the val / test loaders' and their top-level
    copies, which the config check keeps equal. Returns how many were set.

    Raises:
        ToolError: An unknown mode, or no test-mode ``SampleInstancePair``.
    """
    if mode not in TEST_MODES:
        raise ToolError(f'--mode {mode!r}: expected one of {TEST_MODES}')
    from raicl_mm.datasets.sampling import SamplingConfig
    ensemble = mode == 'ensemble'
    num = None
    pipelines = []
    for loader in ('val_dataloader', 'test_dataloader'):
        ds = (cfg.get(loader) or {}).get('dataset') or {}
        if ds.get('pipeline') is not None:
            pipelines.append(ds['pipeline'])
            if num is None:
                # the loader's set size (SamplingConfig's own default if unset)
                num = SamplingConfig(**(ds.get('sampling') or {})).num_instances
    pipelines += [cfg[k] for k in ('val_pipeline', 'test_pipeline')
                  if cfg.get(k) is not None]
    count = 0
    for pipeline in pipelines:
        for step in pipeline:
            if step.get('type') == 'SampleInstancePair' and step.get('test_mode'):
                step['ensemble'] = ensemble
                step['pad_to'] = int(num) if ensemble and num else None
                count += 1
    if not count:
        raise ToolError(f'--mode {mode}: no SampleInstancePair(test_mode=True) '
                        'in test_dataloader.dataset.pipeline')
    return count


def add_tensorboard_if_available(cfg) -> bool:
    """Log to TensorBoard too (a dependency; skipped if it is missing)."""
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


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def user_errors() -> tuple:
    """Exception types that are the user's input, reported in one line."""
    from raicl_mm.compat import CheckpointError  # untrusted, damaged, missing

    from .checkpoint import CheckpointMismatchError
    errors = [ToolError, ConfigError, CheckpointError, CheckpointMismatchError]
    # data the dataset cannot use: an unwritable flow cache, clips without
    # an instance set (on_missing='error')
    from raicl_mm.datasets.instance_sets import MissingInstancesError
    from raicl_mm.flow.cache import FlowCacheError
    errors += [FlowCacheError, MissingInstancesError]
    return tuple(errors)


def run_tool(build_cfg: Callable, args, action: Callable) -> int:
    """Build the config, then the Runner (through ``runner_type``), then
    ``action(runner, args)``; a user error is one line and exit status 2;
    a process group is always closed."""
    from mmaction.registry import RUNNERS

    from .runner import RaICLRunner
    errors = user_errors()
    try:
        cfg = build_cfg(args)
        # A config of its own (no runner_type) is still checked: our tools
        # build it with RaICLRunner rather than a bare Runner.
        runner = (RUNNERS.build(cfg) if 'runner_type' in cfg
                  else RaICLRunner.from_cfg(cfg))
    except errors as err:
        print(f'error: {one_line(err)}', file=sys.stderr)
        return 2
    try:
        action(runner, args)
    except errors as err:
        print(f'error: {one_line(err)}', file=sys.stderr)
        return 2
    finally:
        # gloo ranks that exit without closing the group abort (exit -6).
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


def confusion_picture(predictions_json: str, out_dir: str) -> str:
    """``--show-dir``: the confusion matrix of a predictions file as a PNG."""
    import json

    from raicl_mm.evaluation.metrics import confusion_matrix, uf1_uar
    from raicl_mm.visualization.confusion import plot_confusion
    with open(predictions_json) as f:
        data = json.load(f)
    classes = list(data['classes'])
    preds = data['predictions']
    cm = confusion_matrix([p['gt'] for p in preds], [p['pred'] for p in preds],
                          len(classes))
    scores = uf1_uar(cm)
    name = osp.splitext(osp.basename(predictions_json))[0]
    return plot_confusion(
        cm, classes, f"{name}: UF1 {scores['UF1']:.2%}  UAR "
        f"{scores['UAR']:.2%}  ({len(preds)} samples)",
        osp.join(out_dir, f'confusion_{name}.png'))
