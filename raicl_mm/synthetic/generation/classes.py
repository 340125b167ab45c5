"""The classes of the synthetic set and the facial regions they move.

Each class (``distinct`` design) or region (``shared_primary`` /
``strong_weak``) is a set of Gaussian bumps placed on the face's landmarks
(:func:`raicl_mm.synthetic.generation.motion.au_field`).
"""
from __future__ import annotations

from typing import Dict

#: emotion -> action units written in the sheet and the facial region moved.
SYNTHETIC_CLASSES: Dict[str, Dict[str, str]] = {
    'surprise': {
        'action_units': '1+2',
        'region': 'inner and outer brows and forehead move up (AU1+2)'},
    'happiness': {
        'action_units': '12',
        'region': 'lip corners move outward and up, cheeks lift (AU12)'},
    'disgust': {
        'action_units': '4+9',
        'region': 'brows move down and inward, upper nose and nostril '
                  'wings move up (AU4+9)'},
}

#: Class designs of :class:`SyntheticConfig`.
DESIGNS = ('distinct', 'shared_primary', 'strong_weak')

#: ``shared_primary``: the region every class moves, at full amplitude. The
#: most salient motion is the same for all classes, so attending to it alone
#: cannot tell them apart (the premise of MRD, paper Sec. 3.3).
PRIMARY_REGION = 'brow_lowerer'

#: ``shared_primary``: the weaker region that tells the classes apart.
SECONDARY_REGIONS: Dict[str, str] = {
    'disgust': 'nose_wrinkler',        # AU9: negative
    'happiness': 'lip_corner_puller',  # AU12: positive
    'surprise': 'frontalis',           # AU1+2, upper forehead: surprise
}

#: ``strong_weak`` (benchmark v3): every class has two informative regions,
#: the strong one (:data:`SECONDARY_REGIONS`, at ``secondary_ratio`` of the
#: shared primary) and a weak one at ``weak_ratio`` (at most half) of the
#: strong one, each with its own timing; the shared, uninformative primary
#: moves at full amplitude. The paper's Fig. 5 situation: several informative
#: regions of different strength, the weak ones easy to neglect.
WEAK_REGIONS: Dict[str, str] = {
    'disgust': 'upper_lip_raiser',     # AU10
    'happiness': 'cheek_raiser',       # AU6
    'surprise': 'upper_lid_raiser',    # AU5
}

#: Class-independent motions that some clips of every class carry.
DISTRACTOR_REGIONS = ('dimpler', 'chin_raiser')  # AU14, AU17

REGIONS = (PRIMARY_REGION, *SECONDARY_REGIONS.values(), *WEAK_REGIONS.values(),
           *DISTRACTOR_REGIONS)
