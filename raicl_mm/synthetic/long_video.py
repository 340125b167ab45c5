"""Synthetic long videos with spotting ground truth (the MEGC spot-then-recognize setting).

One video per subject (``videos_per_subject`` for more), tens of seconds at a
dataset's frame rate, small in pixels. Every video holds, at random times:

* **micro-expressions** of the three classes of :data:`generator.SYNTHETIC_CLASSES`
  (``surprise`` AU1+2, ``happiness`` AU12, ``disgust`` AU4+9), short
  (``micro_duration_s``, at most 0.5 s as in the MEGC definition used for
  CAS(ME)^3 and SAMM-LV) and subtle (``micro_amplitude`` pixels at the apex);
* **macro-expressions** of the same classes, longer (``macro_duration_s``) and
  stronger (``macro_amplitude``): they must be spotted as macro, never as micro;
* **distractors**: eye blinks (an eyelid sweep), head motion (smooth
  translation steps and a slow in-plane rotation), and talking-like mouth
  motion (a jaw/chin oscillation at 3-6 Hz on the ``chin_raiser`` and
  ``dimpler`` regions, bursts of ``talk_duration_s``).

Faces, action-unit displacement fields and the rise/fall profile are the
embedded generator's own public functions, imported, not copied:
:func:`generator.make_subject`, :func:`generator.render_face`,
:func:`generator.au_field` and :func:`generator.temporal_profile`. Long-video
subjects are drawn from their own seed stream (``[seed, 100, s]``), so they
are never the subjects of the short-clip set (``[seed, 0, s]``).

Layout written by :func:`generate_long_videos`::

    OUT/frames/<subject>/<video>/<n>.jpg     0-based frame index, as CAS(ME)^3 writes it
    OUT/ground_truth.csv                     one row per interval (micro, macro)
    OUT/manifest.json                        config, per video truth incl. distractors,
                                             measured proportions

``ground_truth.csv`` columns: ``subject, video, onset, apex, offset, type
(micro|macro), emotion (surprise|happiness|disgust), label (the 3-class CDE
name: surprise|positive|negative), fps``. Frame numbers are inclusive.
"""
from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .generation.render import warp_face
from .generator import (SYNTHETIC_CLASSES, au_field, make_subject, render_face,
                        temporal_profile)

LONG_GENERATOR = 'raicl_mm.synthetic.long_video'
LONG_VERSION = 1
GT_NAME = 'ground_truth.csv'
MANIFEST_NAME = 'manifest.json'
FRAMES_DIR = 'frames'
#: 3-class CDE names of the synthetic classes (composite-database rule).
CDE_LABEL = {'surprise': 'surprise', 'happiness': 'positive', 'disgust': 'negative'}
TALK_REGIONS = ('chin_raiser', 'dimpler')
GT_COLUMNS = ('subject', 'video', 'onset', 'apex', 'offset', 'type', 'emotion',
              'label', 'fps')


@dataclass
class LongVideoConfig:
    """Every knob of the long-video benchmark.

    Rates are events per minute of video (the count of a video is drawn from a
    Poisson law with that mean, at least ``min_micro`` micro-expressions).
    Durations are in seconds, amplitudes in pixels of the output frame.
    """

    num_subjects: int = 8
    videos_per_subject: int = 1
    duration_s: float = 40.0
    fps: float = 30.0
    size: int = 64
    supersample: int = 2
    classes: Tuple[str, ...] = ('surprise', 'happiness', 'disgust')
    micro_per_min: float = 9.0
    min_micro: int = 3
    macro_per_min: float = 4.5
    micro_duration_s: Tuple[float, float] = (0.2, 0.5)
    macro_duration_s: Tuple[float, float] = (0.8, 2.5)
    micro_amplitude: Tuple[float, float] = (0.7, 1.3)
    macro_amplitude: Tuple[float, float] = (2.0, 3.5)
    apex_range: Tuple[float, float] = (0.3, 0.6)
    min_gap_s: float = 0.6
    blinks_per_min: float = 12.0
    blink_duration_s: Tuple[float, float] = (0.15, 0.3)
    talk_per_min: float = 3.0
    talk_duration_s: Tuple[float, float] = (0.8, 2.0)
    talk_amplitude: Tuple[float, float] = (0.6, 1.4)
    talk_hz: Tuple[float, float] = (3.0, 6.0)
    head_moves_per_min: float = 3.0
    head_move_px: Tuple[float, float] = (1.0, 3.0)
    head_move_s: Tuple[float, float] = (0.3, 1.0)
    head_rotation_deg: float = 0.8
    noise_std: float = 1.0
    texture_contrast: float = 9.0
    jpeg_quality: int = 95
    seed: int = 0

    def validate(self) -> 'LongVideoConfig':
        """Check the options; raise ``ValueError`` naming the bad one."""
        def bad(name: str, why: str) -> None:
            raise ValueError(f'LongVideoConfig.{name} = {getattr(self, name)!r}: {why}')
        if self.num_subjects < 1 or self.num_subjects > 99:
            bad('num_subjects', 'must lie within [1, 99]')
        if self.videos_per_subject < 1 or self.videos_per_subject > 26:
            bad('videos_per_subject', 'must lie within [1, 26] (videos a..z)')
        if self.fps <= 0:
            bad('fps', 'must be positive')
        if self.size < 32:
            bad('size', 'must be at least 32 pixels')
        for name in ('micro_duration_s', 'macro_duration_s', 'micro_amplitude',
                     'macro_amplitude', 'apex_range', 'blink_duration_s',
                     'talk_duration_s', 'talk_amplitude', 'talk_hz', 'head_move_px',
                     'head_move_s'):
            v = getattr(self, name)
            if len(v) != 2 or v[0] > v[1] or v[0] < 0:
                bad(name, 'must be a (low, high) pair with 0 <= low <= high')
        if round(self.micro_duration_s[0] * self.fps) < 3:
            bad('micro_duration_s', f'the shortest micro-expression must span at least '
                f'3 frames at {self.fps} fps')
        if self.micro_duration_s[1] > 0.5:
            bad('micro_duration_s', 'a micro-expression lasts at most 0.5 s (MEGC)')
        if self.macro_duration_s[0] <= self.micro_duration_s[1]:
            bad('macro_duration_s', 'macro-expressions must be longer than micro ones')
        unknown = [c for c in self.classes if c not in SYNTHETIC_CLASSES]
        if unknown or not self.classes:
            bad('classes', f'choose from {sorted(SYNTHETIC_CLASSES)}')
        if self.duration_s * self.fps < 60:
            bad('duration_s', 'a long video needs at least 60 frames')
        return self

    def to_json(self) -> Dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> 'LongVideoConfig':
        known = {f.name for f in fields(cls)}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v)
                      for k, v in data.items() if k in known})


#: Named settings. ``casme3`` is the benchmark (CAS(ME)^3 frame rate);
#: ``samm`` the SAMM-LV rate (200 fps, shorter so it stays cheap);
#: ``tiny`` a low-fps preset for tests (seconds to make and to spot).
LONG_PRESETS: Dict[str, Dict[str, Any]] = {
    'casme3': dict(),
    'samm': dict(fps=200.0, duration_s=12.0, micro_per_min=12.0, macro_per_min=6.0,
                 min_micro=2),
    'tiny': dict(num_subjects=3, fps=15.0, duration_s=16.0, size=32,
                 micro_duration_s=(0.2, 0.5), macro_duration_s=(0.8, 1.6),
                 micro_per_min=15.0, macro_per_min=7.0, min_micro=2,
                 min_gap_s=0.4),
}


def long_preset(name: str, **overrides: Any) -> LongVideoConfig:
    """The named preset with ``overrides`` applied, validated."""
    if name not in LONG_PRESETS:
        raise ValueError(f'long-video preset {name!r} unknown; choose from '
                         f'{sorted(LONG_PRESETS)}')
    return replace(LongVideoConfig(), **{**LONG_PRESETS[name], **overrides}).validate()


# --------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------
def _place(rng: np.random.Generator, busy: List[Tuple[int, int]], length: int,
           total: int, gap: int, tries: int = 200) -> Optional[int]:
    """A start frame for an event of ``length`` frames clear of ``busy`` by ``gap``."""
    hi = total - length - 1
    if hi < 1:
        return None
    for _ in range(tries):
        start = int(rng.integers(1, hi + 1))
        end = start + length - 1
        if all(end + gap < b0 or start - gap > b1 for b0, b1 in busy):
            return start
    return None


def plan_video(cfg: LongVideoConfig, subject: int, video: int) -> Dict[str, Any]:
    """Decide every event of one video (no pixels). JSON-able."""
    rng = np.random.default_rng([cfg.seed, 101, subject, video])
    n_frames = int(round(cfg.duration_s * cfg.fps))
    minutes = cfg.duration_s / 60.0
    gap = int(round(cfg.min_gap_s * cfg.fps))
    busy: List[Tuple[int, int]] = []
    intervals: List[Dict[str, Any]] = []

    def add_expressions(kind: str, count: int) -> None:
        dur = cfg.micro_duration_s if kind == 'micro' else cfg.macro_duration_s
        amp = cfg.micro_amplitude if kind == 'micro' else cfg.macro_amplitude
        for _ in range(count):
            length = int(round(rng.uniform(*dur) * cfg.fps))
            length = max(length, 3)
            if kind == 'micro':  # at most 0.5 s, inclusive frame count
                length = min(length, int(np.floor(0.5 * cfg.fps)) + 1)
            start = _place(rng, busy, length, n_frames, gap)
            if start is None:
                continue
            busy.append((start, start + length - 1))
            emotion = cfg.classes[int(rng.integers(len(cfg.classes)))]
            apex_i = int(round(rng.uniform(*cfg.apex_range) * (length - 1)))
            apex_i = min(max(apex_i, 1), length - 2)
            intervals.append(dict(
                onset=start, apex=start + apex_i, offset=start + length - 1,
                type=kind, emotion=emotion, label=CDE_LABEL[emotion],
                amplitude_px=float(rng.uniform(*amp))))

    # Macro first (they need the most room), then micro.
    add_expressions('macro', int(rng.poisson(cfg.macro_per_min * minutes)))
    add_expressions('micro', max(cfg.min_micro,
                                 int(rng.poisson(cfg.micro_per_min * minutes))))
    intervals.sort(key=lambda d: d['onset'])

    talks = []
    for _ in range(int(rng.poisson(cfg.talk_per_min * minutes))):
        length = int(round(rng.uniform(*cfg.talk_duration_s) * cfg.fps))
        start = _place(rng, busy, length, n_frames, gap // 2)
        if start is None:
            continue
        busy.append((start, start + length - 1))
        talks.append(dict(start=start, end=start + length - 1,
                          hz=float(rng.uniform(*cfg.talk_hz)),
                          amplitude_px=float(rng.uniform(*cfg.talk_amplitude)),
                          phase=float(rng.uniform(0, np.pi))))
    blinks = []
    for _ in range(int(rng.poisson(cfg.blinks_per_min * minutes))):
        length = max(2, int(round(rng.uniform(*cfg.blink_duration_s) * cfg.fps)))
        start = int(rng.integers(0, max(1, n_frames - length)))
        blinks.append(dict(start=start, end=start + length - 1,
                           closure=float(rng.uniform(0.7, 1.0))))
    moves = []
    for _ in range(int(rng.poisson(cfg.head_moves_per_min * minutes))):
        length = max(2, int(round(rng.uniform(*cfg.head_move_s) * cfg.fps)))
        start = int(rng.integers(0, max(1, n_frames - length)))
        ang = rng.uniform(0, 2 * np.pi)
        mag = rng.uniform(*cfg.head_move_px)
        moves.append(dict(start=start, end=start + length - 1,
                          dx=float(mag * np.cos(ang)), dy=float(mag * np.sin(ang))))
    return dict(subject=f's{subject + 1:02d}', video=chr(ord('a') + video),
                subject_index=subject, video_index=video, num_frames=n_frames,
                fps=cfg.fps, intervals=intervals, talks=talks, blinks=blinks,
                head_moves=moves, noise_seed=int(rng.integers(0, 2**31 - 1)),
                rotation_seed=int(rng.integers(0, 2**31 - 1)))


def _tracks(plan: Dict[str, Any], cfg: LongVideoConfig
            ) -> Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame intensities of every moving region, eyelid closure, head pose."""
    n = plan['num_frames']
    region_amp: Dict[str, np.ndarray] = {}
    for iv in plan['intervals']:
        length = iv['offset'] - iv['onset'] + 1
        prof = temporal_profile(length, iv['apex'] - iv['onset']) * iv['amplitude_px']
        track = region_amp.setdefault(iv['emotion'], np.zeros(n))
        track[iv['onset']:iv['offset'] + 1] += prof
    for talk in plan['talks']:
        t = np.arange(talk['end'] - talk['start'] + 1) / cfg.fps
        env = np.sin(np.pi * np.linspace(0, 1, len(t))) ** 0.5
        osc = np.abs(np.sin(2 * np.pi * talk['hz'] * t + talk['phase']))
        for k, region in enumerate(TALK_REGIONS):
            track = region_amp.setdefault(region, np.zeros(n))
            track[talk['start']:talk['end'] + 1] += (
                env * osc * talk['amplitude_px'] * (1.0 if k == 0 else 0.5))
    closure = np.zeros(n)
    for b in plan['blinks']:
        dur = b['end'] - b['start'] + 2
        i = np.arange(b['start'], b['end'] + 1)
        closure[i] = np.maximum(closure[i], b['closure'] * np.sin(
            np.pi * (i - b['start'] + 1) / dur) ** 2)
    shift = np.zeros((n, 2))
    for m in plan['head_moves']:
        length = m['end'] - m['start'] + 1
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, length + 1) / length)
        step = np.concatenate([ramp, np.ones(n - m['end'] - 1)])
        shift[m['start']:, 0] += m['dx'] * step
        shift[m['start']:, 1] += m['dy'] * step
    rrng = np.random.default_rng(plan['rotation_seed'])
    walk = np.cumsum(rrng.normal(0, 1, n))
    walk = np.convolve(walk, np.ones(15) / 15, mode='same')
    walk -= walk.mean()
    peak = np.abs(walk).max()
    rotation = walk / peak * cfg.head_rotation_deg if peak > 0 else walk
    return region_amp, closure, shift, rotation


def render_video(face, plan: Dict[str, Any], cfg: LongVideoConfig):
    """Yield the frames of a planned video (uint8 BGR, ``size`` px), in order."""
    ss, size = cfg.supersample, cfg.size
    res = size * ss
    open_img, closed_img, eye_region = render_face(face, size, ss,
                                                   float(cfg.texture_contrast))
    region_amp, closure, shift, rotation = _tracks(plan, cfg)
    fields_ = {r: au_field(face, r, res) * np.float32(ss) for r in region_amp}
    grid = np.arange(res, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    rx, ry = gx - face.cx * res, gy - face.cy * res
    top = (face.eye_y - face.eye_ry * 1.6) * res
    span = face.eye_ry * 3.2 * res
    noise_rng = np.random.default_rng(plan['noise_seed'])
    for i in range(plan['num_frames']):
        if closure[i] > 0:
            lid = np.clip((top + closure[i] * span - gy) / (1.5 * ss) + 0.5, 0, 1)
            a = (eye_region * lid)[..., None]
            base = open_img * (1.0 - a) + closed_img * a
        else:
            base = open_img
        dx = np.full_like(gx, shift[i, 0] * ss)
        dy = np.full_like(gy, shift[i, 1] * ss)
        for r, fld in fields_.items():
            k = np.float32(region_amp[r][i])
            if k:
                dx += k * fld[..., 0]
                dy += k * fld[..., 1]
        warped = warp_face(base, gx, gy, dx, dy,
                           np.deg2rad(rotation[i]) if rotation[i] else 0.0,
                           rx, ry, ss, size)
        if cfg.noise_std > 0:
            warped = warped + noise_rng.normal(0, cfg.noise_std, warped.shape
                                               ).astype(np.float32)
        yield np.clip(np.rint(warped), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------
# Proportions (stated by the config, measured from the ground truth)
# --------------------------------------------------------------------------
def measure_proportions(plans: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """What the ground truth holds: counts, per-minute rates, durations, balance."""
    total_frames = sum(p['num_frames'] for p in plans)
    minutes = sum(p['num_frames'] / p['fps'] for p in plans) / 60.0
    out: Dict[str, Any] = dict(videos=len(plans), minutes=round(minutes, 3),
                               frames=total_frames)
    for kind in ('micro', 'macro'):
        ivs = [(iv, p['fps']) for p in plans for iv in p['intervals']
               if iv['type'] == kind]
        durs = [(iv['offset'] - iv['onset'] + 1) / fps for iv, fps in ivs]
        frames = sum(iv['offset'] - iv['onset'] + 1 for iv, _ in ivs)
        out[kind] = dict(
            count=len(ivs), per_min=round(len(ivs) / minutes, 2) if minutes else 0,
            duration_s=dict(min=round(min(durs), 3), mean=round(float(np.mean(durs)), 3),
                            max=round(max(durs), 3)) if durs else None,
            frame_fraction=round(frames / total_frames, 4),
            amplitude_px=dict(mean=round(float(np.mean([iv['amplitude_px'] for iv, _ in ivs])), 3))
            if ivs else None,
            classes={c: sum(1 for iv, _ in ivs if iv['emotion'] == c)
                     for c in sorted({iv['emotion'] for iv, _ in ivs})})
    for kind, key in (('blinks', 'blinks'), ('talks', 'talks'),
                      ('head_moves', 'head_moves')):
        n = sum(len(p[key]) for p in plans)
        out[kind] = dict(count=n, per_min=round(n / minutes, 2) if minutes else 0)
    return out


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------
def _faces(cfg: LongVideoConfig):
    return [make_subject(np.random.default_rng([cfg.seed, 100, s]))
            for s in range(cfg.num_subjects)]


def plan_all(cfg: LongVideoConfig) -> Tuple[list, List[Dict[str, Any]]]:
    """Faces and plans of every video of the benchmark."""
    cfg.validate()
    plans = [plan_video(cfg, s, v) for s in range(cfg.num_subjects)
             for v in range(cfg.videos_per_subject)]
    return _faces(cfg), plans


def write_ground_truth(path: Path, plans: Sequence[Dict[str, Any]]) -> None:
    """The interval sheet (CSV, one row per micro/macro interval)."""
    tmp = path.with_suffix('.tmp')
    with open(tmp, 'w', newline='', encoding='utf-8') as fh:
        w = csv.writer(fh)
        w.writerow(GT_COLUMNS)
        for p in plans:
            for iv in p['intervals']:
                w.writerow([p['subject'], p['video'], iv['onset'], iv['apex'],
                            iv['offset'], iv['type'], iv['emotion'], iv['label'],
                            p['fps']])
    os.replace(tmp, path)


def generate_long_videos(out_dir: str, cfg: Optional[LongVideoConfig] = None,
                         overwrite: bool = False) -> Dict[str, Any]:
    """Write (or reuse) the long-video benchmark under ``out_dir``.

    A folder holding a complete benchmark made with the same config and
    version is reused. Returns the manifest.
    """
    cfg = (cfg or LongVideoConfig()).validate()
    out = Path(out_dir)
    man_path = out / MANIFEST_NAME
    if man_path.is_file():
        try:
            old = json.loads(man_path.read_text())
        except ValueError:
            old = None
        if (old and old.get('generator') == LONG_GENERATOR
                and old.get('version') == LONG_VERSION
                and old.get('config') == cfg.to_json() and all(
                    (out / v['frames_dir'] / f'{v["num_frames"] - 1}.jpg').is_file()
                    for v in old['videos'])):
            return old
        if old is None and not overwrite:
            raise FileExistsError(f'{out}: holds a {MANIFEST_NAME} this generator did '
                                  'not write; choose another folder or overwrite=True')
    elif out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f'{out}: not empty and not a long-video benchmark; '
                              'choose an empty folder or overwrite=True')
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    faces, plans = plan_all(cfg)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(cfg.jpeg_quality)]
    for p in plans:
        p['frames_dir'] = f'{FRAMES_DIR}/{p["subject"]}/{p["video"]}'
        folder = out / p['frames_dir']
        folder.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(render_video(faces[p['subject_index']], p, cfg)):
            ok, buf = cv2.imencode('.jpg', frame, params)
            if not ok:
                raise RuntimeError(f'JPEG encoding failed: {folder}/{i}.jpg')
            (folder / f'{i}.jpg').write_bytes(buf.tobytes())
    write_ground_truth(out / GT_NAME, plans)
    manifest = dict(generator=LONG_GENERATOR, version=LONG_VERSION,
                    config=cfg.to_json(), fps=cfg.fps, ground_truth=GT_NAME,
                    frame_pattern='{frame}.jpg', frames_root=FRAMES_DIR,
                    stated=dict(micro_per_min=cfg.micro_per_min,
                                macro_per_min=cfg.macro_per_min,
                                blinks_per_min=cfg.blinks_per_min,
                                talk_per_min=cfg.talk_per_min,
                                head_moves_per_min=cfg.head_moves_per_min,
                                micro_duration_s=list(cfg.micro_duration_s),
                                macro_duration_s=list(cfg.macro_duration_s),
                                micro_amplitude=list(cfg.micro_amplitude),
                                macro_amplitude=list(cfg.macro_amplitude)),
                    measured=measure_proportions(plans),
                    subjects={f's{s + 1:02d}': f.to_pixels(cfg.size)
                              for s, f in enumerate(faces)},
                    videos=[{k: v for k, v in p.items()
                             if k not in ('noise_seed', 'rotation_seed')} for p in plans],
                    seconds=round(time.perf_counter() - t0, 2))
    tmp = man_path.with_suffix('.tmp')
    tmp.write_text(json.dumps(manifest, indent=1) + '\n')
    os.replace(tmp, man_path)
    return manifest


def write_video_file(path: str, frames, fps: float) -> str:
    """Write frames as an ``.avi`` (MJPG) or ``.mp4`` (mp4v) for the tools."""
    frames = list(frames)
    h, w = frames[0].shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*('MJPG' if path.endswith('.avi') else 'mp4v'))
    vw = cv2.VideoWriter(path, fourcc, float(fps), (w, h))
    if not vw.isOpened():
        raise RuntimeError(f'OpenCV cannot write {path}')
    for f in frames:
        vw.write(f if f.ndim == 3 else cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    vw.release()
    return path
