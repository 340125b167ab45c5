"""The embedded default data set: synthetic micro-expression clips.

The project must run end to end without licensed data. This subpackage writes
synthetic clips **exactly in the CASME II "Cropped" layout** so that the real
CASME II parser reads them unchanged::

    OUT/Cropped/sub01/EP01_03f/reg_img46.jpg ... reg_img71.jpg   (onset..offset)
    OUT/CASME2-coding-synthetic.xlsx      (first sheet, CASME II header)
    OUT/masks/sub01/EP01_03f.png          (ground-truth motion region, 0/255)
    OUT/manifest.json                     (per clip truth + generator parameters)

What a clip contains, and why it is a meaningful test of the method:

* **Faces.** Each subject is a procedural face: a skin-toned ellipse with
  smooth shading and band-pass noise texture (something optical flow can
  track), hair, eyes, brows, nose and mouth drawn with anti-aliased OpenCV
  shapes and blurred. Subjects differ in face shape/size, skin tone, feature
  positions and sizes, and texture seed.
* **Expressions.** Three classes move three different facial regions, each a
  smooth local displacement field (a sum of Gaussian bumps placed on the
  face's own landmarks, see :func:`au_field`) applied with ``cv2.remap``:
  ``surprise`` raises the brows and forehead (AU1+2), ``happiness`` pulls the
  lip corners outward and up (AU12), ``disgust`` lowers the brows inward and
  lifts the upper nose (AU4+9).
* **Time.** Intensity follows a smooth rise from onset to apex and a smooth
  fall to offset; the apex lies at a random place (25-75% of the clip by
  default) and the peak displacement is subtle (0.6-1.5 px by default).
* **Distractors.** Fast eye blinks in some clips of every class, a small
  global head drift, and per-frame sensor noise before JPEG encoding.

Everything is seeded: one seed gives byte-identical frames whatever the number
of worker processes (every clip draws from its own generator keyed by
``(seed, subject, clip)``).

The steps, one module each:

* :mod:`.face` -- the layout of a face (:class:`SubjectFace`, :func:`make_subject`);
* :mod:`.motion` -- displacement fields of classes and regions and their time
  courses (:func:`au_field`, :func:`temporal_profile`, :func:`clip_field`,
  :func:`motion_mask`);
* :mod:`.nuisances` -- blinks, head drift and rotation, light, JPEG quality;
* :mod:`.planning` -- every subject and clip decided before any pixel
  (:func:`plan`);
* :mod:`.render` -- the neutral face, then a clip's frames (:func:`render_face`,
  :func:`render_clip`);
* :mod:`.write` -- frames, masks, sheet and manifest on disk (:func:`generate`).

What they share: :mod:`.classes` (the classes and the regions they move),
:mod:`.config` (:class:`SyntheticConfig`) and :mod:`.files` (the names on
disk). The presets live in :mod:`raicl_mm.synthetic.presets`;
:mod:`raicl_mm.synthetic.generator` is the one-import face of all of it.
"""
from .config import SyntheticConfig
from .write import generate

__all__ = ['SyntheticConfig', 'generate']
