"""Records x sampling -> positions -> pairs from the flow cache -> instance sets.

Every clip of a split gets its instance set (Eq. 2) from the per-pair flow
cache (:class:`raicl_mm.flow.cache.FlowCache`); missing pairs are computed
once, in parallel, whatever sampling strategy asked for them. The cache
knows nothing of sampling: it is handed the positions of each clip by
:class:`SampledPositions` (a :class:`~.sampling.SamplingConfig` as the
cache's positions function), which :func:`sampled_cache` builds it with. A
clip whose set cannot be made (a corrupt or missing frame, no face, a flow
out of float16 range, no apex) is never dropped in silence: it is
*missing*, with its reason, and the caller decides (:data:`MISSING_POLICIES`).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.logging import print_log

from raicl_mm.flow import FlowConfig
from raicl_mm.flow.cache import FlowCache
from raicl_mm.flow.cache_fill import extract_all
from raicl_mm.flow.cache_io import one_line as _one_line

from .sampling import MotionFn, SamplingConfig, clip_positions
from .settings import ConfigError, data_settings
from .synthetic_set import prepare_synthetic

#: What a dataset does with clips whose instance set could not be made:
#: ``'error'`` refuses the split (one line naming every clip and the first
#: reasons), ``'skip'`` leaves them out, logs a warning and lists them in
#: ``dataset.missing``.
MISSING_POLICIES = ('error', 'skip')


class MissingInstancesError(ValueError):
    """Clips of a split have no instance set and ``on_missing='error'``."""


class SampledPositions:
    """A sampling as a flow cache's positions function: ``record -> the
    positions of its instance set`` (:func:`~.sampling.clip_positions`).

    Args:
        sampling_cfg: The sampling (default: :class:`SamplingConfig()`).
        motion_fn: ``record -> (T,)`` per-frame motion for a sampling that
            spots the apex; it may itself read the cache's
            :meth:`~raicl_mm.flow.cache.FlowCache.flows_at`, so it can be
            set after the cache is made. Left behind when pickled (worker
            processes are given positions, never asked to choose them).
    """

    def __init__(self, sampling_cfg: Optional[SamplingConfig] = None,
                 motion_fn: Optional[MotionFn] = None) -> None:
        self.sampling_cfg = sampling_cfg or SamplingConfig()
        self.motion_fn = motion_fn

    def __call__(self, record) -> List[int]:
        return clip_positions(record, self.sampling_cfg, self.motion_fn)

    def __getstate__(self):
        state = dict(self.__dict__)
        state['motion_fn'] = None  # often a closure over the cache
        return state


def sampled_cache(root: str, flow_cfg: FlowConfig,
                  sampling_cfg: Optional[SamplingConfig] = None,
                  motion_fn: Optional[MotionFn] = None) -> FlowCache:
    """A :class:`FlowCache` whose instance sets are at ``sampling_cfg``'s
    positions.

    ``cache.positions_fn`` is the :class:`SampledPositions`; its
    ``sampling_cfg`` and ``motion_fn`` can be read and set there.
    """
    return FlowCache(root, flow_cfg, SampledPositions(sampling_cfg, motion_fn))


def load_instance_sets(records: Sequence, cache: FlowCache,
                       workers: Optional[int] = None, progress: bool = False
                       ) -> Tuple[Dict[str, dict], List[dict], Optional[dict]]:
    """The instance set of every record, computing the missing pairs.

    Args:
        records: The clips (ClipRecords).
        cache: The flow cache (its positions function, the sampling,
            chooses the positions: :func:`sampled_cache`).
        workers: Processes for the missing pairs (None = all cores).
        progress: Progress bar on stderr while computing.

    Returns:
        ``(sets, missing, summary)``: ``sets[sample_id] = {'flows',
        'positions', 'frame_numbers'}`` for the clips that have one;
        ``missing = [{'id': sample id, 'error': one-line reason}]`` for the
        others, in record order; ``summary`` is :func:`extract_all`'s when
        pairs had to be computed, else None.

    Raises:
        FlowCacheError: The cache must be written and cannot be.
    """
    sets: Dict[str, dict] = {}
    errors: Dict[str, str] = {}
    todo = []
    for rec in records:
        try:
            got = cache.load(rec)
        except Exception as exc:  # noqa: BLE001 - the clip is missing, named
            errors[rec.sample_id] = _one_line(exc)
            continue
        if got is None:
            todo.append(rec)
        else:
            sets[rec.sample_id] = got
    summary = None
    if todo:
        print_log(f'flow cache {cache.flow_dir}: computing the missing pairs '
                  f'of {len(todo)} of {len(records)} instance sets',
                  logger='current')
        summary = extract_all(todo, cache, workers=workers, progress=progress)
        print_log(f"flow cache: {summary['pairs_computed']} pairs computed, "
                  f"{summary['pairs_reused']} reused, "
                  f"{len(summary['failed'])} clips failed", logger='current')
        errors.update({f['id']: f['error'] for f in summary['failed']})
        for rec in todo:
            if rec.sample_id in errors:
                continue
            got = cache.load(rec)
            if got is None:
                errors[rec.sample_id] = ('FlowCacheError: the instance set '
                                         'was computed but cannot be read '
                                         f'back from {cache.clip_dir(rec)}')
            else:
                sets[rec.sample_id] = got
    missing = [dict(id=r.sample_id, error=errors[r.sample_id])
               for r in records if r.sample_id in errors]
    return sets, missing, summary


def missing_message(missing: List[dict], planned: int, where: str,
                    shown: int = 10) -> str:
    """One line: how many clips are missing, every id, the first reasons."""
    ids = ', '.join(m['id'] for m in missing)
    why = '; '.join(f"{m['id']}: {m['error']}" for m in missing[:shown])
    more = (f' (and {len(missing) - shown} more)' if len(missing) > shown
            else '')
    return (f'{where}: {len(missing)} of {planned} clips have no instance set '
            f'[{ids}]: {why}{more}')


def apply_missing_policy(missing: List[dict], planned: int, where: str,
                         on_missing: str) -> None:
    """Refuse (``'error'``) or warn about (``'skip'``) missing clips.

    Raises:
        MissingInstancesError: ``on_missing='error'`` and a clip is missing.
    """
    if on_missing not in MISSING_POLICIES:
        raise ValueError(f'on_missing={on_missing!r} is unknown; valid: '
                         f'{", ".join(MISSING_POLICIES)}')
    if not missing:
        return
    text = missing_message(missing, planned, where)
    if on_missing == 'error':
        raise MissingInstancesError(
            f"{text}; set dataset.on_missing='skip' to leave them out "
            '(counted and listed in dataset.missing)')
    import logging
    print_log(f'{text}; left out (on_missing=skip, listed in '
              'dataset.missing)', logger='current', level=logging.WARNING)


def extract_config_flows(cfg, workers: Optional[int] = None,
                         progress: bool = True) -> Dict:
    """Fill the flow cache for every clip of a config's protocol.

    What ``tools/extract_flows.py`` runs: the data settings of the config's
    :class:`MicroExpressionFlowDataset` (``data_settings``), the embedded
    synthetic set generated first when the config asks for it, every record
    of the protocol (all subjects), the pairs of its sampling computed when
    not on disk.

    Args:
        cfg: A checked Ra-ICL config (``mmengine.Config``).
        workers: Processes; None = the dataset's ``flow_workers``, else all
            cores.
        progress: Progress bar on stderr.

    Returns:
        :func:`extract_all`'s summary (``pairs_computed``, ``pairs_reused``,
        ``failed`` ...) with ``protocol``, ``cache`` (the flow setting's
        folder), ``clips``, ``skipped`` (rows the sheet parser skipped),
        ``flow_cfg`` (the key) and ``sampling``.

    Raises:
        ConfigError / ValueError / FileNotFoundError: bad settings, an
            unknown protocol, a missing sheet (one line each).
        FlowCacheError: The cache cannot be written.
    """
    from raicl_mm.datasets.sources import build_records

    ds = data_settings(cfg)
    lacking = [k for k in ('protocol', 'data_roots', 'ann_files')
               if ds.get(k) is None]
    if 'flow_cache' in ds and not ds['flow_cache']:
        lacking.append('flow_cache')
    if lacking:
        raise ConfigError(f'the dataset settings lack {", ".join(lacking)}')

    def plain(value):
        return value.to_dict() if hasattr(value, 'to_dict') else (
            dict(value) if isinstance(value, dict) else value)

    try:
        flow_cfg = FlowConfig(**plain(ds.get('flow_cfg') or {}))
        sampling = SamplingConfig(**plain(ds.get('sampling') or {}))
    except TypeError as exc:
        raise ConfigError(f'dataset flow_cfg/sampling: {exc}') from None
    if ds.get('synthetic'):
        prepare_synthetic(plain(ds['synthetic']))
    report = build_records(ds['protocol'], plain(ds['data_roots']),
                           plain(ds['ann_files']),
                           exclude_file=ds.get('exclude_file'))
    cache = sampled_cache(ds.get('flow_cache') or 'cache/flows', flow_cfg,
                          sampling)
    workers = workers if workers is not None else ds.get('flow_workers')
    summary = extract_all(report.records, cache, workers=workers,
                          progress=progress)
    return dict(protocol=ds['protocol'], cache=str(cache.flow_dir),
                clips=len(report.records), skipped=len(report.skipped),
                flow_cfg=flow_cfg.key_dict(), sampling=vars(sampling),
                **summary)
