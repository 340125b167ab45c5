"""The LOSO plan: what a protocol run will score, written before any fold.

``WORK_DIR/loso_plan.json`` fixes, once for the work dir:

* ``folds`` (fold keys in order) and ``fold_samples`` (the sample ids of
  every fold's test subject): what the pooled report must find scored;
* ``failed_samples``: clips of the protocol whose flow could not be
  computed, with the error, so a clip that cannot be scored is named in the
  report instead of vanishing from it;
* ``settings``: the config (path and a digest of its merged content),
  ``--cfg-options``, ``--amp`` and the data settings of the dataset dicts.
  A rerun with other settings is refused (:func:`plan_differences`) unless
  a new plan is asked for, and then the old folds are archived
  (:func:`archive_run`), never pooled with the new ones.

The older keys (``config, cfg_options, protocol, classes, folds, samples,
flow, sampling``) stay, so work dirs of earlier runs and tools that read
them still work.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import os.path as osp
import shutil
import sys
from typing import Any, Dict, List, Optional, Sequence

PLAN_FILE = 'loso_plan.json'
PLAN_VERSION = 3
#: Written next to a fold's predictions by the run that made them: the plan's
#: identity (:func:`plan_id`) and the sha256 of ``predictions.json``.
STAMP_FILE = 'loso_fold.json'
#: The LOSO runner tells the fold tools the plan they run for.
PLAN_ENV = 'RAICL_LOSO_PLAN'
PREDICTIONS_FILE = 'predictions.json'
#: Dataset keys that do not change what is scored (the runner sets the fold;
#: splits, pipelines and worker counts differ between loaders by design).
_NOT_SETTINGS = ('fold', 'split', 'test_mode', 'pipeline', 'flow_workers',
                 'type')


class PlanError(ValueError):
    """A plan file is unusable or disagrees with the run; one line."""


def _plain(value):
    if hasattr(value, 'to_dict'):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def config_digest(cfg) -> str:
    """sha256 of the merged config, folds and work dir left out (the runner
    sets those per fold)."""
    from raicl_mm.engine.config import LOADERS
    data = _plain(cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg))
    for key in ('work_dir', 'launcher'):
        data.pop(key, None)
    for name in LOADERS:
        ds = (data.get(name) or {}).get('dataset')
        if isinstance(ds, dict):
            ds.pop('fold', None)
    text = json.dumps(data, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def run_settings(config: str, cfg, cfg_options: Optional[Dict],
                 amp: bool = False) -> Dict[str, Any]:
    """What must match between a plan and a (re)run of it."""
    from raicl_mm.engine.config import data_settings
    data = {k: v for k, v in _plain(data_settings(cfg)).items()
            if k not in _NOT_SETTINGS}
    return dict(config=osp.abspath(config), config_digest=config_digest(cfg),
                cfg_options=_plain(dict(cfg_options or {})), amp=bool(amp),
                data=data)


def prepare_data(cfg):
    """The embedded synthetic set (if asked for), the records, every flow.

    The cache is filled by the flow room's own
    :func:`raicl_mm.datasets.instance_sets.extract_config_flows` (the data
    settings of the dataset dicts, the same cache and key the dataset
    reads); each clip that fails is printed with its error and kept in the
    summary's ``failed`` list for the plan.

    Returns:
        ``(ParseReport, flow summary)``.

    Raises:
        FlowCacheError: The cache folder cannot be written (one line).
    """
    from raicl_mm.datasets.instance_sets import extract_config_flows
    from raicl_mm.engine.config import load_records
    summary = extract_config_flows(cfg, progress=True)  # synthetic set first
    report = load_records(cfg)
    for fail in summary['failed']:
        print(f"flow extraction failed: {fail['id']}: {fail['error']}",
              file=sys.stderr)
    return report, summary


def build_plan(config: str, cfg, cfg_options: Optional[Dict], report,
               flow_summary: Dict, amp: bool = False) -> Dict[str, Any]:
    """The plan of a whole protocol (every fold, every sample).

    Args:
        config: Config path as given.
        cfg: The merged, checked config.
        cfg_options: The run's ``--cfg-options``.
        report: ``ParseReport`` of the protocol.
        flow_summary: The flow summary of :func:`prepare_data`.
        amp: Whether the folds train with ``--amp``.
    """
    from raicl_mm.datasets.folds import list_folds
    from raicl_mm.datasets.sources import get_classes
    from raicl_mm.engine.config import data_settings
    ds = data_settings(cfg)
    records = report.records
    folds = list_folds(records)
    fold_of = {r.sample_id: r.fold_subject for r in records}
    fold_samples: Dict[str, List[str]] = {f: [] for f in folds}
    for r in records:
        fold_samples[r.fold_subject].append(r.sample_id)
    failed = [dict(sample_id=str(f['id']), fold=fold_of.get(f['id'], ''),
                   error=str(f['error']))
              for f in flow_summary.get('failed', [])]
    classes = list(get_classes(ds['protocol']))
    labels = {r.sample_id: classes.index(r.label) for r in records
              if r.label in classes}
    plan = dict(
        version=PLAN_VERSION,
        created=datetime.datetime.now().isoformat(timespec='seconds'),
        config=config, cfg_options=_plain(dict(cfg_options or {})),
        protocol=ds['protocol'],
        classes=classes, folds=folds,
        samples=len(records),
        flow=_plain(ds.get('flow_cfg') or {}),
        sampling=_plain(ds.get('sampling') or {}),
        fold_samples=fold_samples, failed_samples=failed,
        parse_skipped=[dict(sample_id=str(s.get('id')), why=str(s.get('why')))
                       for s in report.skipped],
        settings=run_settings(config, cfg, cfg_options, amp),
        labels=labels)
    plan['plan_id'] = plan_id(plan)
    return plan


def plan_id(plan: Dict[str, Any]) -> str:
    """The plan's identity: a hash of its settings (older plans: of the keys
    they hold), so fold outputs can say which plan they belong to."""
    if isinstance(plan.get('settings'), dict):
        basis: Any = plan['settings']
    else:
        basis = {k: plan.get(k) for k in ('config', 'cfg_options', 'protocol',
                                          'flow', 'sampling', 'folds')}
    text = json.dumps(_plain(basis), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def write_fold_stamp(fold_dir: str, plan: Dict[str, Any], key: str,
                     by: str) -> Optional[str]:
    """Mark ``fold_dir/predictions.json`` as this plan's (after a run made it).

    Returns:
        The stamp's path, or None when the fold has no predictions.
    """
    from raicl_mm.evaluation.metrics import atomic_write_json
    preds = osp.join(fold_dir, PREDICTIONS_FILE)
    if not osp.isfile(preds):
        return None
    path = osp.join(fold_dir, STAMP_FILE)
    atomic_write_json(path, dict(
        plan_id=plan_id(plan), fold=key, predictions_sha256=_file_sha256(preds),
        by=by, written=datetime.datetime.now().isoformat(timespec='seconds')))
    return path


def fold_stamp_problem(fold_dir: str, plan: Dict[str, Any],
                       key: str) -> Optional[str]:
    """Why ``fold_dir/predictions.json`` is not this plan's (None: it is).

    A fold's predictions belong to the plan when its stamp names the plan's
    identity and fold and the predictions file is the one the stamped run
    wrote (a stray ``tools/train.py`` or an edited file changes it).
    """
    preds = osp.join(fold_dir, PREDICTIONS_FILE)
    path = osp.join(fold_dir, STAMP_FILE)
    if not osp.isfile(path):
        return f'{preds} has no {STAMP_FILE}: it was not written by a run of this plan'
    try:
        with open(path, encoding='utf-8') as f:
            stamp = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return f'{path} is not readable JSON ({err})'
    if not isinstance(stamp, dict):
        return f'{path} is not a JSON object'
    if stamp.get('plan_id') != plan_id(plan):
        return (f'{preds} was written under other settings (plan '
                f'{stamp.get("plan_id")!r}, this plan {plan_id(plan)!r})')
    if stamp.get('fold') != key:
        return f'{preds} was written for fold {stamp.get("fold")!r}, not {key!r}'
    if stamp.get('predictions_sha256') != _file_sha256(preds):
        return (f'{preds} changed after the plan\'s run wrote it (another run or an '
                'edit replaced it)')
    return None


def write_plan(work_dir: str, plan: Dict[str, Any]) -> str:
    from raicl_mm.evaluation.metrics import atomic_write_json
    path = osp.join(work_dir, PLAN_FILE)
    atomic_write_json(path, plan)
    return path


def _str_list(value, what: str, path: str) -> List[str]:
    if not isinstance(value, list) or not all(isinstance(v, str)
                                              for v in value):
        raise PlanError(f'{path}: "{what}" must be a list of strings')
    return value


def read_plan(work_dir: str, required: bool = True) -> Optional[Dict]:
    """Read and check ``WORK_DIR/loso_plan.json`` (a file is hostile).

    Raises:
        PlanError: One line naming the file and the key.
    """
    path = osp.join(work_dir, PLAN_FILE)
    if not osp.isfile(path):
        if required:
            raise PlanError(f'{path} not found: is {work_dir} a LOSO work '
                            f'directory?')
        return None
    try:
        with open(path, encoding='utf-8') as f:
            plan = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PlanError(f'{path}: not a readable JSON plan ({err})') from None
    if not isinstance(plan, dict):
        raise PlanError(f'{path}: expected a JSON object')
    folds = _str_list(plan.get('folds'), 'folds', path)
    if len(set(folds)) != len(folds):
        raise PlanError(f'{path}: duplicate fold names')
    if not plan.get('classes'):
        raise PlanError(f'{path}: "classes" is missing or empty')
    _str_list([str(c) for c in plan['classes']] if isinstance(
        plan['classes'], list) else None, 'classes', path)
    if 'fold_samples' in plan:
        fs = plan['fold_samples']
        if not isinstance(fs, dict) or set(fs) != set(folds):
            raise PlanError(f'{path}: "fold_samples" must have one list per '
                            f'fold of "folds"')
        for fold, ids in fs.items():
            _str_list(ids, f'fold_samples.{fold}', path)
    failed = plan.get('failed_samples', [])
    if not isinstance(failed, list) or not all(
            isinstance(f, dict) and isinstance(f.get('sample_id'), str)
            for f in failed):
        raise PlanError(f'{path}: "failed_samples" must be a list of '
                        f'{{"sample_id", "fold", "error"}}')
    if 'settings' in plan and not isinstance(plan['settings'], dict):
        raise PlanError(f'{path}: "settings" must be an object')
    labels = plan.get('labels', {})
    if not isinstance(labels, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in labels.values()):
        raise PlanError(f'{path}: "labels" must map sample ids to class indices')
    if 'plan_id' in plan and plan['plan_id'] != plan_id(plan):
        raise PlanError(f'{path}: "plan_id" {plan["plan_id"]!r} does not match its '
                        f'settings ({plan_id(plan)!r}): the plan was edited; rerun '
                        'tools/loso.py with --new-plan')
    return plan


def _short(value, limit: int = 120) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _diff(old, new, prefix: str) -> List[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _diff(old.get(key), new.get(key), f'{prefix}.{key}'
                         if prefix else key)
        return out
    return [] if old == new else [f'{prefix}: {_short(old)} -> {_short(new)}']


def plan_differences(old: Dict, new: Dict) -> List[str]:
    """What differs between an existing plan and the run's (empty: none).

    A plan from before ``settings`` existed is compared on what it holds
    (config, cfg_options, flow, sampling, protocol). The samples of every
    fold are compared too: a data tree that changed under a work dir would
    otherwise pool folds of two versions of the data.
    """
    out: List[str] = []
    if 'settings' in old:
        o, n = dict(old['settings']), dict(new['settings'])
        if o.get('config_digest') != n.get('config_digest'):
            o.pop('config_digest', None), n.pop('config_digest', None)
            details = _diff(o, n, '')
            out += details or ['the merged config differs (the config file, '
                               'or a file it inherits, was edited)']
        else:
            out += _diff(o, n, '')
    else:
        for key in ('config', 'cfg_options', 'protocol', 'flow', 'sampling'):
            out += _diff(old.get(key), new.get(key), key)
    if old.get('folds') != new.get('folds'):
        out.append(f'folds: {_short(old.get("folds"))} -> '
                   f'{_short(new.get("folds"))}')
    elif 'fold_samples' in old:
        for fold in new['folds']:
            a = set(old['fold_samples'].get(fold, []))
            b = set(new['fold_samples'].get(fold, []))
            if a != b:
                out.append(f'fold_samples.{fold}: {len(b - a)} added, '
                           f'{len(a - b)} removed')
    if isinstance(old.get('labels'), dict) and isinstance(new.get('labels'), dict):
        changed = sorted(k for k in set(old['labels']) & set(new['labels'])
                         if old['labels'][k] != new['labels'][k])
        if changed:
            out.append(f'labels: {len(changed)} samples relabelled (e.g. {changed[0]})')
    return out


def archive_run(work_dir: str) -> Optional[str]:
    """Move the plan, the fold folders and the report of the previous plan
    to ``WORK_DIR/superseded/<time>/`` (nothing is deleted). Returns the
    folder, or None when there was nothing to move."""
    names = [n for n in sorted(os.listdir(work_dir))
             if n.startswith('fold_') or n in (PLAN_FILE, 'report',
                                               'loso_timing.json')]
    if not names:
        return None
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    dest = osp.join(work_dir, 'superseded', stamp)
    n = 1
    while osp.exists(dest):
        n += 1
        dest = osp.join(work_dir, 'superseded', f'{stamp}-{n}')
    os.makedirs(dest)
    for name in names:
        shutil.move(osp.join(work_dir, name), osp.join(dest, name))
    return dest


def selected_folds(plan: Dict, wanted: Optional[Sequence[str]]) -> List[str]:
    """``--folds`` (indices, keys, subject ids) -> fold keys of the plan."""
    from raicl_mm.datasets.folds import resolve_fold
    if not wanted:
        return list(plan['folds'])
    keys = [resolve_fold(f, plan['folds']) for f in wanted]
    return list(dict.fromkeys(keys))
