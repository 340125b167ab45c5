"""``OUTDIR/summary.json`` of a GPU-suite run (called by run.sh).

    python -m benchmarks.gpu.summarize OUTDIR SECTIONS_TSV ENV_JSON

``SECTIONS_TSV`` has one line per section that run.sh ran or skipped:
``name<TAB>rc<TAB>seconds<TAB>limit_s<TAB>note``. For each, the section's
JSON (``OUTDIR/<name>.json``) is read; its status becomes:

* ``pass`` / ``fail``: as the section wrote it (rc 0 / 1);
* ``timeout``: run.sh's ``timeout`` stopped it (rc 124 or 137); its JSON,
  left ``running``, keeps what it measured before;
* ``crashed``: non-zero rc and no JSON, or a JSON still ``running`` without
  a timeout (a stub JSON with the log's tail is written so the file exists);
* ``skipped``: run.sh did not run it (``note`` says why).

Prints one line per section and exits 1 when any section is ``fail``,
``timeout`` or ``crashed``, else 0.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import sys
from typing import Dict, List

FAILED = ('fail', 'timeout', 'crashed')


def parse_tsv(text: str) -> List[Dict]:
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split('\t')
        parts += [''] * (5 - len(parts))
        name, rc, secs, limit, note = parts[:5]
        rows.append(dict(name=name, rc=int(rc) if rc.strip() else None,
                         seconds=float(secs) if secs.strip() else None,
                         limit_s=float(limit) if limit.strip() else None,
                         note=note or None))
    return rows


def status_of(rc, data) -> str:
    """The section's status from run.sh's exit code and its JSON."""
    if rc is None:
        return 'skipped'
    if rc in (124, 137):
        return 'timeout'
    if data is None:
        return 'crashed' if rc != 0 else 'crashed'
    st = data.get('status')
    if st == 'skipped' and rc == 0:
        return 'skipped'
    if st == 'pass' and rc == 0:
        return 'pass'
    if st == 'fail':
        return 'fail'
    return 'crashed'


def _tail(path: str, n: int = 3000) -> str:
    try:
        with open(path, errors='replace') as f:
            return f.read()[-n:]
    except OSError:
        return ''


def summarize(out_dir: str, rows: List[Dict], env: Dict) -> Dict:
    sections = {}
    for row in rows:
        name = row['name']
        path = osp.join(out_dir, f'{name}.json')
        data = None
        if osp.isfile(path):
            try:
                with open(path) as f:
                    data = json.load(f)
            except ValueError:
                data = None
        status = status_of(row['rc'], data)
        if status == 'skipped' and data is None:
            data = dict(section=name, status='skipped', reason=row['note'])
            _write(path, data)
        elif data is None or (status in ('crashed', 'timeout')
                              and data.get('status') == 'running'):
            log = osp.join(out_dir, 'logs', f'{name}.log')
            stub = data or dict(section=name, checks={}, figures={})
            stub['status'] = status
            stub['rc'] = row['rc']
            stub['log_tail'] = _tail(log)
            if status == 'timeout':
                stub['why'] = (f'stopped by run.sh after {row["limit_s"]} s; '
                               'the figures above were measured before')
            data = stub
            _write(path, data)
        failed_checks = sorted(k for k, v in (data.get('checks') or {})
                               .items() if v.get('ok') is False)
        skipped_checks = {k: v['skipped'] for k, v in
                          (data.get('checks') or {}).items()
                          if v.get('ok') is None and 'skipped' in v}
        sections[name] = dict(status=status, rc=row['rc'],
                              seconds=row['seconds'], limit_s=row['limit_s'],
                              note=row['note'], failed_checks=failed_checks,
                              skipped_checks=skipped_checks,
                              file=f'{name}.json')
    gpu = None
    for row in rows:
        d = _read(osp.join(out_dir, f'{row["name"]}.json'))
        if d and isinstance(d.get('device'), dict) and d['device'].get('gpu'):
            gpu = d['device']['gpu']
            break
    failed = [k for k, v in sections.items() if v['status'] in FAILED]
    return dict(gpu=gpu, environment=env, sections=sections,
                failed=failed, ok=not failed)


def _read(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write(path, data):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1)
        f.write('\n')
    os.replace(tmp, path)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out_dir, tsv, env_path = argv[:3]
    with open(tsv) as f:
        rows = parse_tsv(f.read())
    env = _read(env_path) or {}
    summary = summarize(out_dir, rows, env)
    _write(osp.join(out_dir, 'summary.json'), summary)
    print(f'GPU suite: {summary["gpu"] or "no GPU"}')
    for name, s in summary['sections'].items():
        extra = ''
        if s['failed_checks']:
            extra += ' failed: ' + ', '.join(s['failed_checks'])
        if s['skipped_checks']:
            extra += ' skipped: ' + ', '.join(s['skipped_checks'])
        if s['note']:
            extra += f' ({s["note"]})'
        secs = f'{s["seconds"]:.0f} s' if s['seconds'] is not None else '-'
        print(f'  {name:9s} {s["status"]:8s} {secs:>6s}{extra}')
    print('summary:', osp.join(out_dir, 'summary.json'))
    return 0 if summary['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
