"""Parsers of the real micro-expression datasets.

:func:`build_records` turns a protocol name, the data roots and the label
sheets into a :class:`~raicl_mm.datasets.records.ParseReport`::

    report = build_records(
        'cde',
        data_roots=dict(casme2='data/CASME2/Cropped', samm='data/SAMM',
                        smic='data/SMIC/HS'),
        ann_files=dict(casme2='CASME2-coding-20190701.xlsx',
                       samm='SAMM_Micro_FACS_Codes_v2.xlsx', cde=None))

Protocols and class orders: :mod:`raicl_mm.datasets.sources.class_maps`;
dataset layouts and quirks: the modules ``casme2``, ``samm``, ``smic``,
``casme3``, ``mmew`` and ``composite``; a sheet the package does not know is
read through a sheet protocol dict (module ``generic``).
"""
from __future__ import annotations

from typing import Dict, Optional

from raicl_mm.datasets.records import ParseReport
from raicl_mm.datasets.sources.casme2 import build_casme2
from raicl_mm.datasets.sources.casme3 import build_casme3
from raicl_mm.datasets.sources.class_maps import (PROTOCOLS, check_protocol, get_classes,
                                                  is_sheet_protocol, protocol_name)
from raicl_mm.datasets.sources.common import apply_exclusions, check_unique
from raicl_mm.datasets.sources.composite import DEFAULT_CDE_LIST, build_cde
from raicl_mm.datasets.sources.generic import build_generic
from raicl_mm.datasets.sources.mmew import build_mmew
from raicl_mm.datasets.sources.samm import build_samm
from raicl_mm.datasets.sources.smic import build_smic

__all__ = ['PROTOCOLS', 'DEFAULT_CDE_LIST', 'get_classes', 'protocol_name',
           'is_sheet_protocol', 'build_records']


def build_records(protocol: str, data_roots: Optional[Dict], ann_files: Optional[Dict],
                  exclude_file: Optional[str] = None,
                  check_frames: bool = True) -> ParseReport:
    """Parse a protocol's samples from the real datasets.

    Args:
        protocol: One of :data:`PROTOCOLS`, or a sheet protocol dict
            (``source='sheet'``, see :mod:`.generic`).
        data_roots: ``dict(casme2=..., samm=..., smic=..., casme3=...)``;
            only the datasets of the protocol are needed, and none when
            ``check_frames`` is False (except ``smic`` for the ``smic``
            protocol, whose labels are folders).
        ann_files: ``dict(casme2=xlsx, samm=xlsx, casme3=xlsx, cde=csv)``;
            ``cde`` None or absent means the list shipped with the package.
        exclude_file: Optional text file of sample ids to leave out (one
            ``dataset/subject/clip_id`` a line, ``#`` comments).
        check_frames: Read the frame folders; if False the sheets alone are
            read and ``frame_paths`` stay empty.

    Returns:
        The records (sheet order), with what was skipped and flagged.

    Raises:
        ValueError: Unknown protocol (lists the valid ones), a sheet missing
            a needed column, an emotion/label outside the class map, two
            samples with one id.
        FileNotFoundError: A missing sheet, data root or exclusion list.
    """
    check_protocol(protocol)
    data_roots = dict(data_roots or {})
    ann_files = dict(ann_files or {})
    if is_sheet_protocol(protocol):
        report = build_generic(protocol, data_roots, ann_files, check_frames)
    elif protocol == 'cde':
        report = build_cde(data_roots, ann_files, check_frames)
    elif protocol.startswith('casme3'):
        report = build_casme3(protocol, data_roots, ann_files, check_frames)
    elif protocol.startswith('casme2'):
        report = build_casme2(protocol, data_roots, ann_files, check_frames)
    elif protocol.startswith('mmew'):
        report = build_mmew(protocol, data_roots, ann_files, check_frames)
    elif protocol == 'samm':
        report = build_samm(protocol, data_roots, ann_files, check_frames)
    else:
        report = build_smic(protocol, data_roots, ann_files, check_frames)
    check_unique(report)
    if exclude_file:
        apply_exclusions(report, exclude_file)
    return report
