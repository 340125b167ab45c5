"""Class lists and emotion -> class maps of every supported protocol.

A protocol is an ordered class list (index = label id) plus a map from the raw
emotion written in a sheet (lower-cased, stripped) to a class name.  A map
value of ``None`` means "a known emotion that this protocol leaves out": such
a clip is reported in ``ParseReport.skipped`` with why.  An emotion that is not
a key of the map at all is an input error (a typo or an unexpected sheet
version) and raises :class:`ValueError` naming the file, row and value.

Protocols (DATASETS.md):

* ``cde`` -- MEGC2019 composite, 3 classes in MEGC order
  ``negative (0), positive (1), surprise (2)``.  The official list
  (``combined_3class_gt.csv``) defines the samples; :data:`CDE_RULE` is the
  rule behind it and is used to map the CASME II / SAMM sheets in
  ``casme2_3cls`` and to cross-check the list.
* ``casme2_3cls`` -- the CASME II sheet with :data:`CDE_RULE` (others dropped).
* ``casme2`` -- CASME II's own 5 classes
  ``happiness, repression, surprise, disgust, others``; sadness and fear are
  dropped (too few clips), as in the usual 5-class protocol.
* ``samm`` -- SAMM's usual 5 classes
  ``anger, contempt, happiness, surprise, others`` (the sheet's ``Other``
  becomes ``others``); disgust, fear and sadness are dropped.
* ``smic`` -- SMIC-HS folders ``negative, positive, surprise``.
* ``casme3_7cls`` -- CAS(ME)^3 part A raw emotions in the fixed order
  ``happy, surprise, disgust, fear, anger, sad, others``.
* ``casme3_4cls`` -- ``negative`` {anger, disgust, fear, sad}, ``positive``
  {happy}, ``surprise``, ``others``.
* ``casme3_3cls`` -- the 4-class map without ``others``.
* ``mmew_3cls`` -- MMEW, the "Rethinking key-frame-based micro-expression recognition"'s 3 classes: ``negative`` {disgust, fear,
  sadness, anger}, ``positive`` {happiness}, ``surprise``; others dropped.
* ``mmew_5cls`` -- MMEW, the "Rethinking key-frame-based micro-expression recognition"'s 5 classes ``disgust, happiness,
  surprise, fear, others``; sadness and anger dropped (too few clips).

A protocol may also be a **sheet protocol**, a dict that brings its own
classes (a dataset the package does not know, read by
:mod:`raicl_mm.datasets.sources.generic`)::

    protocol = dict(source='sheet', name='dfme_7cls', dataset='dfme',
                    classes=['happiness', 'anger', ...],
                    class_map=None,            # None: each class maps to itself
                    columns=dict(subject='Subject', clip='Filename', ...),
                    frames='{subject}/{clip}')

:func:`get_classes` / :func:`get_class_map` read ``classes`` / ``class_map``
from it; the rest is checked by ``generic.check_sheet_spec``.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

#: MEGC2019 class order: label id 0, 1, 2.
MEGC_CLASSES: List[str] = ['negative', 'positive', 'surprise']

#: The rule behind the MEGC2019 composite list (DATASETS.md, "CDE").
CDE_RULE: Dict[str, Optional[str]] = {
    'repression': 'negative',
    'disgust': 'negative',
    'anger': 'negative',
    'contempt': 'negative',
    'fear': 'negative',
    'sadness': 'negative',
    'happiness': 'positive',
    'surprise': 'surprise',
    'others': None,
    'other': None,
}

CASME2_CLASSES: List[str] = ['happiness', 'repression', 'surprise', 'disgust', 'others']
CASME2_MAP: Dict[str, Optional[str]] = {
    'happiness': 'happiness',
    'repression': 'repression',
    'surprise': 'surprise',
    'disgust': 'disgust',
    'others': 'others',
    'sadness': None,
    'fear': None,
}

SAMM_CLASSES: List[str] = ['anger', 'contempt', 'happiness', 'surprise', 'others']
SAMM_MAP: Dict[str, Optional[str]] = {
    'anger': 'anger',
    'contempt': 'contempt',
    'happiness': 'happiness',
    'surprise': 'surprise',
    'other': 'others',
    'others': 'others',
    'disgust': None,
    'fear': None,
    'sadness': None,
}

#: SMIC-HS emotion folder name -> class.
SMIC_MAP: Dict[str, Optional[str]] = {
    'negative': 'negative',
    'positive': 'positive',
    'surprise': 'surprise',
}

CASME3_7_CLASSES: List[str] = ['happy', 'surprise', 'disgust', 'fear', 'anger', 'sad', 'others']
CASME3_7_MAP: Dict[str, Optional[str]] = {name: name for name in CASME3_7_CLASSES}
CASME3_4_CLASSES: List[str] = MEGC_CLASSES + ['others']
CASME3_4_MAP: Dict[str, Optional[str]] = {
    'anger': 'negative',
    'disgust': 'negative',
    'fear': 'negative',
    'sad': 'negative',
    'happy': 'positive',
    'surprise': 'surprise',
    'others': 'others',
}
CASME3_3_MAP: Dict[str, Optional[str]] = dict(CASME3_4_MAP, others=None)

#: MMEW raw emotions (DATASETS.md): happiness, surprise, disgust, fear,
#: sadness, anger, others.
MMEW_3_MAP: Dict[str, Optional[str]] = {
    'disgust': 'negative',
    'fear': 'negative',
    'sadness': 'negative',
    'anger': 'negative',
    'happiness': 'positive',
    'surprise': 'surprise',
    'others': None,
}
MMEW_5_CLASSES: List[str] = ['disgust', 'happiness', 'surprise', 'fear', 'others']
MMEW_5_MAP: Dict[str, Optional[str]] = {
    'disgust': 'disgust',
    'happiness': 'happiness',
    'surprise': 'surprise',
    'fear': 'fear',
    'others': 'others',
    'sadness': None,
    'anger': None,
}

#: protocol -> (ordered classes, raw emotion -> class or None).
PROTOCOL_MAPS: Dict[str, tuple] = {
    'cde': (MEGC_CLASSES, CDE_RULE),
    'casme3_3cls': (MEGC_CLASSES, CASME3_3_MAP),
    'casme3_4cls': (CASME3_4_CLASSES, CASME3_4_MAP),
    'casme3_7cls': (CASME3_7_CLASSES, CASME3_7_MAP),
    'casme2': (CASME2_CLASSES, CASME2_MAP),
    'casme2_3cls': (MEGC_CLASSES, CDE_RULE),
    'samm': (SAMM_CLASSES, SAMM_MAP),
    'smic': (MEGC_CLASSES, SMIC_MAP),
    'mmew_3cls': (MEGC_CLASSES, MMEW_3_MAP),
    'mmew_5cls': (MMEW_5_CLASSES, MMEW_5_MAP),
}

#: Every protocol name accepted by ``build_records``.
PROTOCOLS: tuple = tuple(PROTOCOL_MAPS)


def is_sheet_protocol(protocol) -> bool:
    """True for a sheet protocol (a dict with ``source='sheet'``)."""
    return isinstance(protocol, Mapping) and protocol.get('source') == 'sheet'


def protocol_name(protocol) -> str:
    """A protocol's name: the string itself, or a sheet protocol's ``name``."""
    if is_sheet_protocol(protocol):
        return str(protocol.get('name') or protocol.get('dataset') or 'sheet')
    return str(protocol)


def _sheet_classes(spec: Mapping) -> tuple:
    """``(classes, class_map)`` of a sheet protocol, checked.

    Raises:
        ValueError: No or duplicate classes, a map value that is not a class.
    """
    name = protocol_name(spec)
    classes = spec.get('classes')
    if (not isinstance(classes, Sequence) or isinstance(classes, str) or not classes
            or not all(isinstance(c, str) and c.strip() for c in classes)):
        raise ValueError(f'protocol {name!r}: protocol.classes must be a non-empty '
                         f'list of class names, got {classes!r}')
    classes = [c.strip() for c in classes]
    if len(set(classes)) != len(classes):
        raise ValueError(f'protocol {name!r}: protocol.classes lists a class twice: '
                         f'{classes}')
    raw_map = spec.get('class_map')
    if raw_map is None:
        class_map = {c.lower(): c for c in classes}
    elif isinstance(raw_map, Mapping):
        class_map = {}
        for key, value in raw_map.items():
            if value is not None and value not in classes:
                raise ValueError(f'protocol {name!r}: protocol.class_map[{key!r}] = '
                                 f'{value!r} is not one of protocol.classes {classes}')
            class_map[str(key).strip().lower()] = value
    else:
        raise ValueError(f'protocol {name!r}: protocol.class_map must be a dict '
                         f'(raw emotion -> class or None) or None, got {raw_map!r}')
    return classes, class_map


def check_protocol(protocol):
    """Return ``protocol`` if it is known (or a well-formed sheet protocol).

    Args:
        protocol: A protocol name, or a sheet protocol dict.

    Returns:
        The same value.

    Raises:
        ValueError: If the name is unknown; the message lists the valid ones.
    """
    if is_sheet_protocol(protocol):
        _sheet_classes(protocol)
        return protocol
    if isinstance(protocol, Mapping):
        raise ValueError(f'protocol dict {dict(protocol)!r} needs source=\'sheet\' '
                         '(a sheet protocol); or give a protocol name: '
                         f'{", ".join(PROTOCOLS)}')
    if protocol not in PROTOCOL_MAPS:
        raise ValueError(f'unknown protocol {protocol!r}; valid protocols: '
                         f'{", ".join(PROTOCOLS)}, or a sheet protocol '
                         "dict(source='sheet', ...)")
    return protocol


def get_classes(protocol) -> List[str]:
    """Ordered class names of a protocol; the index is the label id.

    Args:
        protocol: One of :data:`PROTOCOLS`, or a sheet protocol.

    Returns:
        A new list of class names.

    Raises:
        ValueError: For an unknown protocol.
    """
    if is_sheet_protocol(protocol):
        return list(_sheet_classes(protocol)[0])
    return list(PROTOCOL_MAPS[check_protocol(protocol)][0])


def get_class_map(protocol) -> Dict[str, Optional[str]]:
    """Raw emotion (lower case) -> class name, or None for a dropped emotion.

    Args:
        protocol: One of :data:`PROTOCOLS`, or a sheet protocol.

    Returns:
        A new dict.

    Raises:
        ValueError: For an unknown protocol.
    """
    if is_sheet_protocol(protocol):
        return dict(_sheet_classes(protocol)[1])
    return dict(PROTOCOL_MAPS[check_protocol(protocol)][1])
