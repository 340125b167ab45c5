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
"""
from __future__ import annotations

from typing import Dict, List, Optional

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
}

#: Every protocol name accepted by ``build_records``.
PROTOCOLS: tuple = tuple(PROTOCOL_MAPS)


def check_protocol(protocol: str) -> str:
    """Return ``protocol`` if it is known.

    Args:
        protocol: A protocol name.

    Returns:
        The same name.

    Raises:
        ValueError: If the name is unknown; the message lists the valid ones.
    """
    if protocol not in PROTOCOL_MAPS:
        raise ValueError(f'unknown protocol {protocol!r}; valid protocols: '
                         f'{", ".join(PROTOCOLS)}')
    return protocol


def get_classes(protocol: str) -> List[str]:
    """Ordered class names of a protocol; the index is the label id.

    Args:
        protocol: One of :data:`PROTOCOLS`.

    Returns:
        A new list of class names.

    Raises:
        ValueError: For an unknown protocol.
    """
    return list(PROTOCOL_MAPS[check_protocol(protocol)][0])


def get_class_map(protocol: str) -> Dict[str, Optional[str]]:
    """Raw emotion (lower case) -> class name, or None for a dropped emotion.

    Args:
        protocol: One of :data:`PROTOCOLS`.

    Returns:
        A new dict.

    Raises:
        ValueError: For an unknown protocol.
    """
    return dict(PROTOCOL_MAPS[check_protocol(protocol)][1])
