"""MicroExpressionFlowDataset: records -> MIR instance sets, with LOSO selection."""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Union

import numpy as np
from mmaction.datasets import BaseActionDataset
from mmaction.registry import DATASETS
from mmengine.logging import print_log

from raicl_mm.flow import FlowConfig
from raicl_mm.flow.cache import FlowCache, extract_all

from .sampling import SamplingConfig
from .folds import list_folds, resolve_fold
from .sources import build_records, get_classes


def prepare_synthetic(spec: dict) -> dict:
    """Generate (or reuse) the embedded synthetic set described by ``spec``.

    Several fold processes may build their datasets at once: an exclusive
    lock next to the output folder lets one generate while the others wait
    and then reuse it.
    """
    import fcntl
    import os

    from raicl_mm.synthetic import SyntheticConfig, generate
    spec = dict(spec)
    out = spec.pop('out', None)
    if not out:
        raise ValueError('dataset.synthetic needs out=<folder>')
    try:
        cfg = SyntheticConfig(**spec)
    except TypeError as err:
        raise ValueError(f'dataset.synthetic: {err}') from None
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    with open(os.path.abspath(out).rstrip('/') + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return generate(out, cfg)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@DATASETS.register_module()
class MicroExpressionFlowDataset(BaseActionDataset):
    SPLITS = ('train', 'test', 'all', 'inner_train', 'inner_val')

    """A micro-expression protocol as sets of onset->frame flow instances (MIR).

    The records come from the official sheets and the frame trees
    (``raicl_mm.datasets.sources``); each clip's instance set is read from the
    flow cache and built there first when missing (in parallel). The instance
    sets of a fold are small and kept in memory (float16), so loading is never
    the bottleneck of training.

    Args:
        protocol: One of ``raicl_mm.datasets.sources.PROTOCOLS``.
        data_roots: ``dict(casme2=..., samm=..., smic=..., casme3=...)``.
        ann_files: ``dict(casme2=..., samm=..., casme3=..., cde=...)``.
        pipeline: Transforms (``SampleInstancePair`` ... ``PackActionInputs``).
        flow_cfg: ``FlowConfig`` kwargs (method, size, crop).
        sampling: ``SamplingConfig`` kwargs (strategy, num_instances...).
        flow_cache: Folder of the flow cache.
        exclude_file: Optional file of sample ids to leave out.
        fold: LOSO test subject (index, fold key or subject id), or a list
            of them for a subject-group fold (k folds by subject); None = no
            split.
        split: ``'train'`` (all subjects but the fold's), ``'test'`` (the
            fold's subject), ``'all'``, or, for checkpoint selection without
            looking at the test subject, ``'inner_train'`` / ``'inner_val'``
            (the training subjects minus / only ``inner_val`` held-out ones).
        inner_val: ``dict(num_subjects=2, seed=0)``: how many training
            subjects to hold out for the inner validation split (chosen with
            a seeded shuffle of the training subjects).
        flow_workers: Processes used to fill the cache (None = all cores).
        synthetic: ``dict(out=..., **SyntheticConfig fields)``: generate the
            embedded synthetic set there first (reused when complete and
            made with the same parameters; one process generates, the others
            wait on a lock), so every runner works on a fresh clone.
    """

    def __init__(self, protocol: str, data_roots: dict, ann_files: dict,
                 pipeline: list, flow_cfg: Optional[dict] = None,
                 sampling: Optional[dict] = None,
                 flow_cache: str = 'cache/flows',
                 exclude_file: Optional[str] = None,
                 fold: Union[int, str, None] = None, split: str = 'all',
                 flow_workers: Optional[int] = None,
                 inner_val: Optional[dict] = None,
                 synthetic: Optional[dict] = None, **kwargs):
        if split not in self.SPLITS:
            raise ValueError(f'split must be one of {self.SPLITS}, got {split!r}')
        if split != 'all' and fold is None:
            raise ValueError(f'split={split!r} needs a fold (the LOSO test '
                             'subject): pass --fold to the tool or set fold')
        if synthetic:
            prepare_synthetic(synthetic)
        self.protocol = protocol
        self.data_roots = dict(data_roots or {})
        self.ann_files = dict(ann_files or {})
        self.flow_cfg = FlowConfig(**(flow_cfg or {}))
        self.sampling_cfg = SamplingConfig(**(sampling or {}))
        self.cache = FlowCache(flow_cache, self.flow_cfg, self.sampling_cfg)
        self.exclude_file = exclude_file
        self.fold = fold
        self.split = split
        self.flow_workers = flow_workers
        self.inner_val = {**dict(num_subjects=2, seed=0), **(inner_val or {})}
        self._instances: List[np.ndarray] = []
        classes = get_classes(protocol)
        metainfo = dict(classes=tuple(classes))
        metainfo.update(kwargs.pop('metainfo', None) or {})
        super().__init__(ann_file='', pipeline=pipeline, metainfo=metainfo,
                         num_classes=len(classes), **kwargs)

    # ------------------------------------------------------------------
    def load_data_list(self) -> List[dict]:
        report = build_records(self.protocol, self.data_roots, self.ann_files,
                               exclude_file=self.exclude_file)
        self.parse_report = report
        records = report.records
        self.folds = list_folds(records)
        self.fold_key = None
        if self.fold is not None:
            if isinstance(self.fold, (list, tuple)):
                self.fold_key = [resolve_fold(f, self.folds) for f in self.fold]
            else:
                self.fold_key = resolve_fold(self.fold, self.folds)
            tested = set(self.fold_keys)
            if self.split == 'train':
                records = [r for r in records if r.fold_subject not in tested]
            elif self.split == 'test':
                records = [r for r in records if r.fold_subject in tested]
            elif self.split in ('inner_train', 'inner_val'):
                held = self.inner_val_subjects()
                records = [r for r in records if r.fold_subject not in tested
                           and (r.fold_subject in held) == (self.split == 'inner_val')]
        if not records:
            raise ValueError(f'{self.protocol}: no samples for split '
                             f'{self.split!r} of fold {self.fold_key}')
        sets = self._load_instance_sets(records)
        classes = self.metainfo['classes']
        data_list, self._instances = [], []
        for rec in records:
            item = sets.get(rec.sample_id)
            if item is None:
                continue
            if rec.label not in classes:
                raise ValueError(f'{rec.sample_id}: label {rec.label!r} is not '
                                 f'a class of {self.protocol} {classes}')
            self._instances.append(item['flows'].astype(np.float16))
            data_list.append(dict(
                sample_id=rec.sample_id, dataset=rec.dataset,
                subject=rec.subject, fold=rec.fold_subject,
                label=int(classes.index(rec.label)),
                positions=list(item['positions']),
                frame_numbers=list(item['frame_numbers'])))
        return data_list

    @property
    def fold_keys(self) -> List[str]:
        """The test subjects of the fold (one for LOSO)."""
        if self.fold_key is None:
            return []
        return ([self.fold_key] if isinstance(self.fold_key, str)
                else list(self.fold_key))

    def inner_val_subjects(self) -> List[str]:
        """Training subjects held out for inner validation (never the test one)."""
        train = [f for f in self.folds if f not in self.fold_keys]
        k = int(self.inner_val['num_subjects'])
        if not 0 < k < len(train):
            raise ValueError(f'inner_val.num_subjects={k}: must be between 1 and '
                             f'{len(train) - 1} ({len(train)} training subjects)')
        rng = np.random.default_rng(int(self.inner_val['seed']))
        return sorted(rng.permutation(train)[:k].tolist())

    def _load_instance_sets(self, records) -> Dict[str, dict]:
        sets, missing = {}, []
        for rec in records:
            got = self.cache.load(rec)
            if got is None:
                missing.append(rec)
            else:
                sets[rec.sample_id] = got
        if missing:
            print_log(f'flow cache {self.cache.root}: building {len(missing)} '
                      f'of {len(records)} instance sets', logger='current')
            summary = extract_all(missing, self.cache,
                                  workers=self.flow_workers, progress=False)
            for fail in summary['failed']:
                print_log(f"flow extraction failed for {fail['id']}: "
                          f"{fail['error']} (sample left out)",
                          logger='current', level=logging.WARNING)
            for rec in missing:
                got = self.cache.load(rec)
                if got is not None:
                    sets[rec.sample_id] = got
        return sets

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        info['instances'] = self._instances[idx]
        return info
