"""A fold folder of a LOSO work dir is the plan's: train/test refuse it with
other settings, and stamp the predictions of a run the plan allows.

``tools/train.py`` and ``tools/test.py`` call :func:`guard_planned_fold`
before a run and :func:`stamp_planned_fold` after it; the plan file and its
settings are :mod:`raicl_mm.protocol.plan`'s.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Optional

from raicl_mm.engine.cli import ToolError, one_line, read_config
from raicl_mm.engine.config import ConfigError, check_config

from .plan import (PLAN_ENV, PLAN_FILE, PlanError, plan_differences, plan_id,
                   read_plan, run_settings, write_fold_stamp)


def planned_fold(work_dir: Optional[str]):
    """``(plan, fold key, LOSO work dir)`` when ``work_dir`` is a fold folder
    of a LOSO work dir (its parent holds ``loso_plan.json``), else None."""
    if not work_dir:
        return None
    folder = osp.abspath(work_dir)
    parent, name = osp.dirname(folder), osp.basename(folder)
    if not name.startswith('fold_') or not osp.isfile(osp.join(parent, PLAN_FILE)):
        return None
    try:
        plan = read_plan(parent)
    except PlanError as err:
        raise ToolError(str(err)) from None
    key = name[len('fold_'):]
    if key not in plan['folds']:
        return None
    return plan, key, osp.relpath(parent) if not osp.isabs(work_dir) else parent


def guard_planned_fold(args, cfg, fold_name: Optional[str], amp: bool = False):
    """Refuse to write into a fold of a LOSO work dir with other settings.

    A fold folder of a planned work dir holds that plan's results: a stray
    one-fold run (other options, another fold) would replace them and change
    the pooled report. The LOSO runner passes the plan's identity
    (``RAICL_LOSO_PLAN``); a run by hand is allowed when its config and
    ``--cfg-options`` give the plan's settings and it trains the folder's fold.

    Returns:
        ``(plan, key)`` for a planned fold (its predictions are stamped after
        the run), else None.

    Raises:
        ToolError: Naming the fold, the plan, what differs and how to go on.
    """
    hit = planned_fold(cfg.get('work_dir'))
    if hit is None:
        return None
    plan, key, loso_dir = hit
    if os.environ.get(PLAN_ENV) == plan_id(plan) and fold_name == key:
        return plan, key
    diffs = []
    if fold_name != key:
        diffs.append(f'fold {fold_name or "(none)"} in the folder of fold {key}')
    if 'settings' in plan:
        try:
            base = read_config(args.config)
            if args.cfg_options:
                base.merge_from_dict(dict(args.cfg_options))
            check_config(base)
            probe = dict(plan, settings=run_settings(
                args.config, base, args.cfg_options,
                amp if amp is not None else plan['settings'].get('amp', False)))
            diffs += plan_differences(plan, probe)
        except (ConfigError, ValueError) as err:
            diffs.append(f'the settings cannot be compared ({one_line(err)})')
    if not diffs:
        return plan, key
    shown = '; '.join(diffs[:4]) + (f'; +{len(diffs) - 4} more' if len(diffs) > 4 else '')
    raise ToolError(
        f'{cfg.work_dir} is fold {key} of the LOSO plan '
        f'{osp.join(loso_dir, "loso_plan.json")}, made with other settings ({shown}); '
        f'it is left as it is. To rerun this fold with the plan\'s settings: '
        f'tools/loso.py {plan.get("config") or args.config} --work-dir {loso_dir} '
        f'--folds {key}; to try these settings, pass another --work-dir')


def stamp_planned_fold(guard, work_dir: str, tool: str,
                       wrote: Optional[str] = None) -> None:
    """After a run allowed by :func:`guard_planned_fold` that wrote the fold's
    ``predictions.json`` (``wrote``): mark it as the plan's (main process only)."""
    if not guard or not wrote or osp.abspath(wrote) != osp.abspath(
            osp.join(work_dir, 'predictions.json')):
        return
    from mmengine.dist import is_main_process
    if not is_main_process():
        return
    plan, key = guard
    write_fold_stamp(work_dir, plan, key, tool)
