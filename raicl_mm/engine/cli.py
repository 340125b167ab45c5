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


#: Parts of a config only training reads; tools/test.py drops them.
TRAINING_ONLY = ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler',
                 'val_dataloader', 'val_cfg', 'val_evaluator', 'auto_scale_lr')

#: Set to 1 (or pass ``--debug``) for the traceback of an error.
DEBUG_ENV = 'RAICL_DEBUG'


def debug_wanted(args=None) -> bool:
    """``--debug`` or ``RAICL_DEBUG=1``: show tracebacks instead of one line."""
    return bool(getattr(args, 'debug', False)) or os.environ.get(
        DEBUG_ENV, '').strip() not in ('', '0', 'false', 'no')


def error_line(err: BaseException, expected: bool) -> str:
    """``error: ...`` for the user; an unexpected type is named, with how to
    see the traceback."""
    if expected:
        return f'error: {one_line(err)}'
    return (f'error: {type(err).__name__}: {one_line(err)} (rerun with --debug or '
            f'{DEBUG_ENV}=1 for the traceback)')


def main_guard(main, argv=None, tool: str = '') -> int:
    """Run a tool's ``main``: any exception becomes one line and exit status
    2 (1 for an internal error), the traceback only with ``--debug`` /
    ``RAICL_DEBUG=1``. ``SystemExit`` (argparse) and Ctrl-C pass."""
    debug = '--debug' in (sys.argv[1:] if argv is None else list(argv))
    try:
        return main(argv)
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as err:  # noqa: BLE001 - the one place that reports it
        if debug or debug_wanted():
            raise
        try:
            expected = isinstance(err, user_errors() + (ValueError, OSError,
                                                         TypeError, KeyError))
        except Exception:  # noqa: BLE001 - the stack cannot even be imported
            expected = False
        prefix = f'{tool}: ' if tool else ''
        print(prefix + error_line(err, expected), file=sys.stderr)
        return 2 if expected else 1


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
    parser.add_argument('--debug', action='store_true',
                        help=f'show the traceback of an error (also {DEBUG_ENV}=1)')


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


#: Top-level keys of a data-only config (``tools/dataset_info.py`` reads one).
DATA_ONLY_KEYS = ('protocol', 'data_roots', 'ann_files', 'exclude_file', 'sampling',
                  'flow_cfg', 'holdout', 'synthetic', 'flow_cache', 'on_missing')


def load_checked_config(path, cfg_options=None, data_only: bool = False):
    """What every tool reads a config with: ``Config.fromfile``, the
    ``--cfg-options`` merged last, then the checks ``RaICLRunner`` runs
    (:func:`raicl_mm.engine.config.check_config`), before any data is read.

    Args:
        path: The config file (or an already read ``Config``).
        cfg_options: ``--cfg-options`` (dotted keys).
        data_only: Also accept a data-only config (the data settings as
            top-level keys, no loaders); its other top-level keys are refused.

    Raises:
        ToolError: A missing or broken file, or an option that cannot merge.
        ConfigError: A key that reaches nothing, loaders that disagree...
    """
    from mmengine.config import Config
    from .config import check_config, flow_datasets
    cfg = path if isinstance(path, Config) else read_config(path)
    if cfg_options:
        try:
            cfg.merge_from_dict(dict(cfg_options))
        except Exception as err:  # noqa: BLE001 - mmengine raises TypeError/KeyError
            raise ToolError(f'--cfg-options: {one_line(err)}') from None
    if data_only and not list(flow_datasets(cfg)) and 'runner_type' not in cfg:
        dead = [k for k in cfg.keys() if k not in DATA_ONLY_KEYS]
        if dead:
            raise ConfigError(f"top-level config key '{dead[0]}' reaches nothing in a "
                              f'data-only config (keys: {", ".join(DATA_ONLY_KEYS)})')
        return cfg
    check_config(cfg)
    return cfg


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
    from raicl_mm.flow.cache_io import FlowCacheError
    errors += [FlowCacheError, MissingInstancesError]
    return tuple(errors)


def run_tool(build_cfg: Callable, args, action: Callable) -> int:
    """Build the config, then the Runner (through ``runner_type``), then
    ``action(runner, args)``; a user error is one line and exit status 2;
    a process group is always closed."""
    from mmaction.registry import RUNNERS

    from .runner import RaICLRunner
    errors = user_errors()
    debug = debug_wanted(args)
    # Before the Runner trains, a ValueError / TypeError / OSError comes from
    # the config, the data or the files named: the user's input. After
    # that, only the known user errors are; anything else is named with
    # how to get the traceback.
    setup_errors = errors + (ValueError, TypeError, KeyError, OSError)
    try:
        cfg = build_cfg(args)
        # A config of its own (no runner_type) is still checked: our tools
        # build it with RaICLRunner rather than a bare Runner.
        runner = (RUNNERS.build(cfg) if 'runner_type' in cfg
                  else RaICLRunner.from_cfg(cfg))
    except Exception as err:  # noqa: BLE001 - one line unless --debug
        if debug:
            raise
        print(error_line(err, isinstance(err, setup_errors)), file=sys.stderr)
        return 2
    try:
        action(runner, args)
    except Exception as err:  # noqa: BLE001 - one line unless --debug
        if debug:
            raise
        expected = isinstance(err, setup_errors)
        print(error_line(err, expected), file=sys.stderr)
        return 2 if expected else 1
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
