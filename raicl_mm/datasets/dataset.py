"""MicroExpressionFlowDataset: records -> MIR instance sets, with LOSO selection."""
from __future__ import annotations

from typing import List, Optional, Union

import numpy as np
from mmaction.datasets import BaseActionDataset
from mmaction.registry import DATASETS

from raicl_mm.flow import FlowConfig

from .instance_sets import (MISSING_POLICIES, apply_missing_policy,
                            load_instance_sets, sampled_cache)
from .sampling import SamplingConfig, motion_from_flows
from .folds import check_holdout, holdout_split, list_folds, resolve_fold
from .sources import build_records, get_classes
from .synthetic_set import prepare_synthetic  # noqa: F401  (its old home)


#: Datasets distributed as whole frames (DATASETS.md): SAMM 960x650 grey,
#: CAS(ME)^3 part A 1280x720. Their flow needs the face aligned first.
WHOLE_FRAME_DATASETS = ('samm', 'casme3')
#: A frame this wide or high (px) is taken as a whole frame, not a face crop.
WHOLE_FRAME_PX = 600
UNCROPPED_POLICIES = ('error', 'allow')


def _frame_size(path: str):
    """``(width, height)`` from the image header, or None when unreadable."""
    try:
        from PIL import Image
        with Image.open(path) as img:
            return img.size
    except Exception:  # noqa: BLE001 - a damaged frame is reported elsewhere
        return None


def check_cropped(records, flow_cfg, uncropped: str = 'error') -> None:
    """Refuse whole frames of SAMM / CAS(ME)^3 read without a face crop.

    The flow of a whole 960x650 frame resized to 112 px is mostly background;
    ``flow_cfg.face_crop='landmarks'`` aligns the face first (docs/data.md).
    The onset frame of each such dataset's first clip is measured once.

    Raises:
        ValueError: One line naming the dataset, the frame, its size and how
            to go on (``face_crop='landmarks'``, or ``uncropped='allow'``).
    """
    if flow_cfg.face_crop is not None or uncropped == 'allow':
        return
    seen = set()
    for rec in records:
        if rec.dataset not in WHOLE_FRAME_DATASETS or rec.dataset in seen \
                or not rec.frame_paths:
            continue
        seen.add(rec.dataset)
        size = _frame_size(rec.frame_paths[0])
        if size and max(size) >= WHOLE_FRAME_PX:
            raise ValueError(
                f'{rec.dataset} frames are whole frames ({size[0]}x{size[1]}, e.g. '
                f'{rec.frame_paths[0]}) and flow_cfg.face_crop is None: set '
                "flow_cfg.face_crop='landmarks' in the three loaders' dataset dicts "
                '(docs/data.md, "Aligning uncropped frames"), or '
                "dataset.uncropped='allow' to use the whole frames on purpose")


@DATASETS.register_module()
class MicroExpressionFlowDataset(BaseActionDataset):
    SPLITS = ('train', 'test', 'all', 'inner_train', 'inner_val', 'val')

    """A micro-expression protocol as sets of onset->frame flow instances (MIR).

    The records come from the official sheets and the frame trees
    (``raicl_mm.datasets.sources``); each clip's instance set is read from the
    per-pair flow cache (:mod:`raicl_mm.flow.cache`), its missing pairs
    computed there first (in parallel; pairs of any other sampling are
    reused). The instance sets of a fold are small and kept in memory
    (float16), so loading is never the bottleneck of training.

    A clip whose instance set cannot be made (corrupt or missing frame, no
    face, flow out of range, no apex) is *missing*: with ``on_missing='error'``
    (default) the dataset refuses to build, naming every such clip and why;
    with ``'skip'`` it leaves them out, logs a warning and lists them.

    Attributes:
        planned: Sample ids of the split's records, in sheet order (what
            the split should hold, missing clips included).
        missing: ``[{'id': sample id, 'error': one-line reason}]``, the
            planned clips without an instance set (empty when complete;
            only non-empty with ``on_missing='skip'``). ``len(self) ==
            len(planned) - len(missing)``.
        cache: The :class:`~raicl_mm.flow.cache.FlowCache`, its positions
            function the dataset's sampling
            (:class:`~.instance_sets.SampledPositions`);
            ``cache.flows_at(record, positions)`` gives onset->frame flows at
            any positions of a record (e.g. every frame, for the spotter),
            from disk or computed once.
        records: The split's ClipRecords that have an instance set (the
            order of the data list).

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
        holdout: A hold-out protocol instead of LOSO (the "Modeling the evolution dynamics to enhance micro-expression recognition"'s DFME
            split): ``dict(by='column'|'subjects', train=[...], val=[...] or
            None, test=[...], val_fraction=0.2, seed=0)``
            (:func:`raicl_mm.datasets.folds.check_holdout`); then ``fold``
            is None and ``split`` is ``'train'``, ``'val'`` or ``'test'``.
        uncropped: ``'error'`` (default): refuse SAMM / CAS(ME)^3 whole
            frames (600 px or more) read with ``flow_cfg.face_crop=None``,
            saying how to align them; ``'allow'`` uses them as they are.
        on_missing: ``'error'`` (default: refuse a split with clips whose
            instance set could not be made, one line naming them) or
            ``'skip'`` (leave them out, warn, list them in ``missing``).
    """

    def __init__(self, protocol: str, data_roots: dict, ann_files: dict,
                 pipeline: list, flow_cfg: Optional[dict] = None,
                 sampling: Optional[dict] = None,
                 flow_cache: str = 'cache/flows',
                 exclude_file: Optional[str] = None,
                 fold: Union[int, str, None] = None, split: str = 'all',
                 flow_workers: Optional[int] = None,
                 inner_val: Optional[dict] = None,
                 synthetic: Optional[dict] = None,
                 on_missing: str = 'error', holdout: Optional[dict] = None,
                 uncropped: str = 'error',
                 **kwargs):
        if split not in self.SPLITS:
            raise ValueError(f'split must be one of {self.SPLITS}, got {split!r}')
        if holdout:
            check_holdout(holdout)
            if fold is not None:
                raise ValueError(f'dataset holdout and fold={fold!r} exclude '
                                 'each other: set fold=None for a hold-out '
                                 'protocol')
            if split not in ('train', 'val', 'test', 'all'):
                raise ValueError(f"split={split!r}: a hold-out protocol has "
                                 "'train', 'val' and 'test'")
        elif split == 'val':
            raise ValueError("split='val' needs a hold-out protocol "
                             '(dataset.holdout)')
        elif split != 'all' and fold is None:
            raise ValueError(f'split={split!r} needs a fold (the LOSO test '
                             'subject): pass --fold to the tool or set fold')
        self.holdout = dict(holdout) if holdout else None
        if on_missing not in MISSING_POLICIES:
            raise ValueError(f'dataset on_missing={on_missing!r} is unknown; '
                             f'valid: {", ".join(MISSING_POLICIES)}')
        self.on_missing = on_missing
        if uncropped not in UNCROPPED_POLICIES:
            raise ValueError(f'dataset uncropped={uncropped!r} is unknown; valid: '
                             f'{", ".join(UNCROPPED_POLICIES)}')
        self.uncropped = uncropped
        self.planned: List[str] = []
        self.missing: List[dict] = []
        self.records: list = []
        if synthetic:
            prepare_synthetic(synthetic)
        self.protocol = protocol
        self.data_roots = dict(data_roots or {})
        self.ann_files = dict(ann_files or {})
        self.flow_cfg = FlowConfig(**(flow_cfg or {}))
        self.sampling_cfg = SamplingConfig(**(sampling or {}))
        # The cache is handed the sampling as its positions function.
        self.cache = sampled_cache(flow_cache, self.flow_cfg,
                                   self.sampling_cfg)
        if self.sampling_cfg.apex_source != 'annotation':
            # The spotter's signal is the motion of every frame, read from
            # (and computed once into) the shared per-pair cache.
            cache = self.cache
            self.cache.positions_fn.motion_fn = lambda rec: motion_from_flows(
                cache.flows_at(rec, list(range(rec.num_frames))))
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
        if self.holdout and self.split != 'all':
            records = holdout_split(records, self.holdout)[self.split]
        elif self.fold is not None:
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
        classes = self.metainfo['classes']
        for rec in records:
            if rec.label not in classes:
                raise ValueError(f'{rec.sample_id}: label {rec.label!r} is not '
                                 f'a class of {self.protocol} {classes}')
        self.planned = [r.sample_id for r in records]
        check_cropped(records, self.flow_cfg, self.uncropped)
        sets, self.missing, _ = load_instance_sets(
            records, self.cache, workers=self.flow_workers)
        where = (f'{self.protocol} split {self.split!r}'
                 + (f' of fold {self.fold_key}' if self.fold_key is not None
                    else ''))
        apply_missing_policy(self.missing, len(records), where,
                             self.on_missing)
        data_list, self._instances, self.records = [], [], []
        for rec in records:
            item = sets.get(rec.sample_id)
            if item is None:
                continue
            self.records.append(rec)
            self._instances.append(item['flows'].astype(np.float16))
            data_list.append(dict(
                sample_id=rec.sample_id, dataset=rec.dataset,
                subject=rec.subject, fold=rec.fold_subject,
                label=int(classes.index(rec.label)),
                positions=list(item['positions']),
                frame_numbers=list(item['frame_numbers'])))
        if not data_list:
            raise ValueError(f'{where}: none of the {len(records)} clips has '
                             'an instance set (all in dataset.missing)')
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

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        info['instances'] = self._instances[idx]
        return info
