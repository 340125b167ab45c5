"""The spot-then-recognize protocol of a config, end to end, in one call.

    python tools/str_benchmark.py configs/spotting/str_synthetic.py
    python tools/str_benchmark.py configs/spotting/str_synthetic.py \
        --results-out benchmarks/results/str_synthetic

Generates the long-video benchmark when the config asks for it, trains the
Ra-ICL recogniser when its checkpoint is missing and the config gives a
``train_cmd``, extracts the window flows (cached), runs every spotter
leave-one-subject-out with its seeds, recognises every spotted interval, and
prints the pooled table (spotting F1 micro / macro / overall, the analysis F1
and STRS with the middle instance and with the ensemble). The report
(``str_report.json`` / ``.md``) and one timeline picture per video go to the
config's ``work_dir``.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('config')
    ap.add_argument('--work-dir', help='override the config work_dir')
    ap.add_argument('--num-subjects', type=int, help='synthetic: override the subject count')
    ap.add_argument('--seeds', type=int, nargs='+',
                    help='seeds of every learned spotter (default: the config)')
    ap.add_argument('--epochs', type=int, help='override the learned spotters\' epochs')
    ap.add_argument('--no-recognition', action='store_true',
                    help='spot only (no Ra-ICL checkpoint needed)')
    ap.add_argument('--results-out', help='also copy the report to PREFIX.json / PREFIX.md')
    args = ap.parse_args(argv)

    import torch
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1') or 1))
    from mmengine.config import Config

    from raicl_mm.spotting.str_protocol import report_markdown, run_str
    cfg = Config.fromfile(args.config).to_dict()
    if args.work_dir:
        cfg['work_dir'] = args.work_dir
    if args.num_subjects and cfg['data']['type'] == 'synthetic_long':
        cfg['data']['num_subjects'] = args.num_subjects
    for sp in cfg['spotters']:
        name = sp.get('name') or sp['type']
        if args.epochs and sp['type'] == 'LearnedFlowSpotter':
            sp['epochs'] = args.epochs
        if args.seeds and sp['type'] != 'FlowPeakSpotter':
            cfg.setdefault('seeds', {})[name] = list(args.seeds)
    rec = cfg.get('recognizer')
    if args.no_recognition:
        cfg['recognizer'] = None
    elif rec and not osp.isfile(rec['checkpoint']):
        if not rec.get('train_cmd'):
            print(f'recogniser checkpoint {rec["checkpoint"]} is missing; train it or pass '
                  '--no-recognition', file=sys.stderr)
            return 2
        print('training the recogniser:', ' '.join(rec['train_cmd']), flush=True)
        subprocess.run([sys.executable, *rec['train_cmd']], check=True)
        if not osp.isfile(rec['checkpoint']):
            print(f'training finished but {rec["checkpoint"]} is missing', file=sys.stderr)
            return 2
    report = run_str(cfg, log=lambda m: print(m, flush=True))
    print()
    print(report_markdown(report))
    print(f'report: {osp.join(cfg["work_dir"], "str_report.json")}')
    print(f'timelines: {osp.join(cfg["work_dir"], "timelines")}/ ({len(report["timelines"])})')
    if args.results_out:
        os.makedirs(osp.dirname(args.results_out) or '.', exist_ok=True)
        report = dict(report, command=' '.join(['python', 'tools/str_benchmark.py',
                                                *(argv or sys.argv[1:])]))
        with open(args.results_out + '.json', 'w') as fh:
            json.dump(report, fh, indent=1, default=str)
        shutil.copyfile(osp.join(cfg['work_dir'], 'str_report.md'), args.results_out + '.md')
        print(f'results: {args.results_out}.json / .md')
    return 0


if __name__ == '__main__':
    sys.exit(main())
