"""Write the embedded synthetic micro-expression set (CASME II layout).

Example::

    python tools/make_synthetic.py --out data/synthetic --subjects 8 \
        --clips-per-subject 12 --size 128 --seed 0

The folder then holds ``Cropped/subXX/<clip>/reg_imgN.jpg``, the coding sheet
``CASME2-coding-synthetic.xlsx``, ground-truth motion masks under ``masks/``
and ``manifest.json``. Running it again with the same parameters reuses the
folder.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import argparse  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
from typing import List, Optional  # noqa: E402

from raicl_mm.synthetic.generator import SyntheticConfig, generate  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    defaults = SyntheticConfig()
    parser = argparse.ArgumentParser(
        description='Write synthetic micro-expression clips in the CASME II '
                    'layout (frames, coding sheet, motion masks, manifest).')
    parser.add_argument('--out', default='data/synthetic',
                        help='output folder (default: %(default)s)')
    parser.add_argument('--subjects', type=int, default=defaults.num_subjects,
                        help='number of subjects (default: %(default)s)')
    parser.add_argument('--clips-per-subject', type=int,
                        default=defaults.clips_per_subject,
                        help='clips per subject (default: %(default)s)')
    parser.add_argument('--size', type=int, default=defaults.size,
                        help='frame size in pixels (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=defaults.seed,
                        help='random seed (default: %(default)s)')
    parser.add_argument('--workers', type=int, default=None,
                        help='worker processes (default: CPU count, at most 8)')
    parser.add_argument('--overwrite', action='store_true',
                        help='write into a non-empty folder that is not a '
                             'synthetic set (only the generator\'s own outputs '
                             'are replaced)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Generate the set and print where it is, how many clips, how long."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    cfg = SyntheticConfig(num_subjects=args.subjects,
                          clips_per_subject=args.clips_per_subject,
                          size=args.size, seed=args.seed)
    start = time.perf_counter()
    try:
        manifest = generate(args.out, cfg, workers=args.workers,
                            overwrite=args.overwrite)
    except (ValueError, FileExistsError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    print(f'output: {osp.abspath(args.out)}')
    print(f'clips: {len(manifest["clips"])}')
    print(f'time: {elapsed:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
