"""Scale-out: tools/dist_train.sh (torchrun, gloo on CPU) and tools/slurm_loso.sh.

The DDP tests run 2 CPU processes with the gloo backend; a probe hook (a
plugin module written by the test and loaded through ``custom_imports``)
records, on every rank, the loss of each iteration averaged over the ranks and
the final state dict, so that the test can compare

* rank 0 with rank 1 (DDP keeps the replicas identical: bitwise), and
* 2 processes x batch 1 with 1 process x batch 2 (same global batch, same
  seed): see ``test_ddp_matches_single_process`` for what must match and why.

The Slurm test drives a real single-node Slurm (slurmctld + slurmd on
localhost) when ``slurm-wlm`` and ``munge`` are installed, and is skipped
otherwise.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

DIST_TRAIN = REPO / 'tools' / 'dist_train.sh'
SLURM_LOSO = REPO / 'tools' / 'slurm_loso.sh'

PROBE = '''
"""Test-only plugin: per-iteration loss (mean over ranks) and final weights."""
import json
import os.path as osp

import torch
import torch.distributed as dist
from mmaction.registry import HOOKS
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


@HOOKS.register_module()
class DistProbeHook(Hook):
    priority = 'LOWEST'

    def __init__(self):
        self.losses = []
        self.rank_losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        local = torch.tensor([float(outputs['loss'])], dtype=torch.float64)
        world = get_world_size()
        gathered = [local.clone() for _ in range(world)]
        if world > 1:
            dist.all_gather(gathered, local)
        self.rank_losses.append([float(t) for t in gathered])
        self.losses.append(sum(float(t) for t in gathered) / world)

    def after_run(self, runner):
        model = runner.model
        wrapper = type(model).__name__
        if is_model_wrapper(model):
            model = model.module
        rank = get_rank()
        state = {k: v.detach().cpu().clone()
                 for k, v in model.state_dict().items()}
        torch.save(state, osp.join(runner.work_dir, f'state_rank{rank}.pt'))
        with open(osp.join(runner.work_dir, f'probe_rank{rank}.json'),
                  'w') as f:
            json.dump(dict(losses=self.losses, rank_losses=self.rank_losses,
                           world_size=get_world_size(), wrapper=wrapper,
                           backend=(dist.get_backend() if get_world_size() > 1
                                    else None)), f)
'''

PROBE_CONFIG = '''
_base_ = [{base!r}]
custom_imports = dict(imports=['raicl_mm', 'ddp_probe'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='TargetEMAHook', interval=1),
                dict(type='EpochSeedHook'), dict(type='DistProbeHook')]
'''

# The equivalence config: everything that legitimately depends on how the
# global batch is split over processes is switched off (see the test).
EQUIV_CONFIG = PROBE_CONFIG + '''
__data = dict(sampling=dict(num_instances=2), flow_cache={cache!r})
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
model = dict(
    backbone=dict(norm_cfg=dict(type='GN', num_groups=4, requires_grad=True)),
    mrd_head=None,
    augment_online=dict(jitter=0.0, blur_prob=0.0),
    augment_target=dict(jitter=0.0, blur_prob=0.0))
'''


def _env(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               PYTHON=sys.executable)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(tmp_path)] + ([env['PYTHONPATH']] if env.get('PYTHONPATH')
                           else []))
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _run(cmd, env, timeout=240):
    res = subprocess.run([str(c) for c in cmd], capture_output=True,
                         text=True, timeout=timeout, cwd=REPO, env=env)
    assert res.returncode == 0, (
        f'{cmd} failed ({res.returncode}):\n{res.stdout[-4000:]}\n'
        f'{res.stderr[-6000:]}')
    return res


# The configs set randomness, which --seed (mmaction2's rule) leaves alone.
SEEDED = ('randomness.seed=0', 'randomness.deterministic=True')


def _train_single(config, work, env, batch):
    return _run([sys.executable, REPO / 'tools' / 'train.py', config,
                 '--fold', '0', '--work-dir', work, '--cfg-options',
                 *SEEDED, f'train_dataloader.batch_size={batch}'], env)


def _train_ddp(config, work, env, batch, nproc=2):
    env = dict(env, PORT=str(_free_port()))
    return _run(['bash', DIST_TRAIN, config, nproc, '--fold', '0',
                 '--work-dir', work, '--cfg-options', *SEEDED,
                 f'train_dataloader.batch_size={batch}'], env)


def _probe(work, rank):
    return json.loads((Path(work) / f'probe_rank{rank}.json').read_text())


def _state(work, rank):
    import torch
    return torch.load(Path(work) / f'state_rank{rank}.pt',
                      weights_only=True)


def _scores(work):
    data = json.loads((Path(work) / 'predictions.json').read_text())
    rows = data['predictions'] if isinstance(data, dict) else data
    return {r['sample_id']: r['scores'] for r in rows}


@pytest.fixture(scope='module')
def probe_dir(tmp_path_factory, tiny_config):
    root = tmp_path_factory.mktemp('ddp')
    (root / 'ddp_probe.py').write_text(PROBE)
    (root / 'probe.py').write_text(PROBE_CONFIG.format(base=str(tiny_config)))
    (root / 'equiv.py').write_text(EQUIV_CONFIG.format(
        base=str(tiny_config), cache=str(root / 'cache_pairs')))
    return root


def _assert_replicas_equal(work):
    import torch
    s0, s1 = _state(work, 0), _state(work, 1)
    assert s0.keys() == s1.keys()
    differ = [k for k in s0 if not torch.equal(s0[k], s1[k])]
    assert not differ, f'rank 0 and rank 1 disagree on {differ[:5]}'
    return s0


def test_dist_train_default_model(probe_dir):
    """The real model (BatchNorm, MRD, augmentation on) under 2-process DDP:
    finishes, DDP wraps it, both replicas end identical (online, target and
    the SyncBuffersHook-averaged BN statistics), rank 0 writes the
    checkpoints and the fold's predictions."""
    env = _env(probe_dir)
    work = probe_dir / 'ddp_default'
    _train_ddp(probe_dir / 'probe.py', work, env, batch=1)
    p0, p1 = _probe(work, 0), _probe(work, 1)
    assert p0['world_size'] == p1['world_size'] == 2
    assert p0['backend'] == 'gloo'
    assert p0['wrapper'] == 'MMDistributedDataParallel'
    # 6 training clips of fold 0, 2 ranks x batch 1: 3 iterations x 2 epochs.
    assert len(p0['losses']) == 6
    assert p0['losses'] == p1['losses']
    _assert_replicas_equal(work)
    for name in ('epoch_1.pth', 'epoch_2.pth', 'last_checkpoint',
                 'predictions.json'):
        assert (work / name).is_file(), name
    assert len(_scores(work)) == 3  # the test subject's 3 clips, once each


def test_ddp_matches_single_process(probe_dir):
    """2 processes x batch 1 == 1 process x batch 2 (same seed, same global
    batch), on a configuration where nothing depends on the split:

    * per-process BatchNorm statistics: BN in the backbone -> GroupNorm, and
      MRD (whose projector/predictor MLPs have a hard-wired BN1d) off; SyncBN
      would be the other way but torch's SyncBatchNorm refuses CPU tensors;
    * branch augmentation (jitter, blur: torch RNG draws per process) off;
      the target's certain flip stays;
    * the random instance pair (numpy RNG per process, each rank reseeded to
      the same state by EpochSeedHook, so ranks draw differently from one
      process): 2 instances per clip, so a pair is (0, 1) or (1, 0), and the
      symmetric loss is the same for both orders;
    * the data order: DefaultSampler's shuffle is seeded identically and
      rank r takes positions r, r+2, ..., so iteration i sees the same two
      clips in both runs.

    What remains is floating-point summation order (DDP averages two
    per-rank gradients; one process sums the batch at once).
    """
    import torch
    env = _env(probe_dir)
    single, ddp = probe_dir / 'eq_single', probe_dir / 'eq_ddp'
    # The single run first: it fills the flow cache the DDP ranks then read.
    _train_single(probe_dir / 'equiv.py', single, env, batch=2)
    _train_ddp(probe_dir / 'equiv.py', ddp, env, batch=1)

    ps, pd = _probe(single, 0), _probe(ddp, 0)
    assert ps['world_size'] == 1 and pd['world_size'] == 2
    assert len(ps['losses']) == len(pd['losses']) == 6
    # Iteration 1: identical weights (same seed; DDP broadcasts rank 0's) and
    # the same two clips -> the same loss up to float32 rounding of a batch-1
    # vs batch-2 forward (measured: equal to the last bit).
    assert pd['losses'][0] == pytest.approx(ps['losses'][0], rel=1e-5)
    # All 6 iterations: the only difference is the summation order of the
    # gradient (mean of two per-rank means vs one batch mean), ~1e-7
    # relative (measured: <= 7.5e-8); 1e-4 leaves room for other CPUs and
    # BLAS kernels. (With per-process BatchNorm, augmentation and random
    # pairs on, the first loss alone differs by ~10 %.)
    assert pd['losses'] == pytest.approx(ps['losses'], rel=1e-4)

    s_ddp = _assert_replicas_equal(ddp)
    s_one = _state(single, 0)
    worst = max(float((s_ddp[k].float() - s_one[k].float()).abs().max())
                for k in s_one if s_one[k].is_floating_point())
    # One Adam step moves a weight by up to lr = 1e-3 (~lr * sign(g)), so a
    # wrong or missing gradient all-reduce shows up at the 1e-4..1e-3 level;
    # rounding gives ~6e-8 after 6 steps (measured). Threshold 1e-5.
    assert worst < 1e-5, f'largest parameter difference {worst:.3g}'

    sc_one, sc_ddp = _scores(single), _scores(ddp)
    assert sc_one.keys() == sc_ddp.keys() and len(sc_one) == 3
    for sid in sc_one:
        assert torch.allclose(torch.tensor(sc_ddp[sid]),
                              torch.tensor(sc_one[sid]), atol=1e-5), sid


# --------------------------------------------------------------- Slurm
PLAN_KEYS = {'config', 'cfg_options', 'protocol', 'classes', 'folds',
             'samples', 'flow', 'sampling'}  # what tools/loso.py writes
ONE_EPOCH = ['--', '--cfg-options', 'train_cfg.max_epochs=1',
             'train_cfg.val_begin=1', 'train_cfg.val_interval=1']

FAKE_SBATCH = '''#!/usr/bin/env bash
# Records each submission (options + the script on stdin), prints a job id.
d=${FAKE_SBATCH_DIR:?}
n=$(ls "$d" | grep -c '\\.args$' || true)
id=$((1000 + n))
printf '%s\\n' "$@" > "$d/job_$id.args"
cat > "$d/job_$id.sh"
echo "$id"
'''


def test_slurm_loso_submissions(tiny_config, tmp_path):
    """Without Slurm: a stand-in sbatch records what slurm_loso.sh submits
    (the plan, the array, the dependency); the recorded array script is then
    run for task 0 as Slurm would run it."""
    bindir, jobs, work = tmp_path / 'bin', tmp_path / 'jobs', tmp_path / 'w'
    bindir.mkdir()
    jobs.mkdir()
    (bindir / 'sbatch').write_text(FAKE_SBATCH)
    (bindir / 'sbatch').chmod(0o755)
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable,
               FAKE_SBATCH_DIR=str(jobs), CPUS_PER_TASK='1',
               PATH=f'{bindir}{os.pathsep}{os.environ["PATH"]}')
    res = _run(['bash', SLURM_LOSO, tiny_config, work, 'debug', *ONE_EPOCH],
               env)
    assert 'fold array 1000 (3 tasks, --array=0-2), report 1001' in res.stdout
    plan = json.loads((work / 'loso_plan.json').read_text())
    assert PLAN_KEYS <= set(plan)  # and fold_samples, settings...
    assert plan['folds'] == ['casme2_01', 'casme2_02', 'casme2_03']
    assert plan['cfg_options'] == {'train_cfg.max_epochs': 1,
                                   'train_cfg.val_begin': 1,
                                   'train_cfg.val_interval': 1}
    array = (jobs / 'job_1000.args').read_text().split('\n')
    assert '--array=0-2' in array and '--partition=debug' in array
    report = (jobs / 'job_1001.args').read_text().split('\n')
    assert '--dependency=afterany:1000' in report
    assert 'loso_report.py' in (jobs / 'job_1001.sh').read_text()
    # Run task 0 (fold casme2_01) as a Slurm array task would.
    task = dict(env, SLURM_ARRAY_TASK_ID='0', SLURM_CPUS_PER_TASK='1')
    _run(['bash', jobs / 'job_1000.sh'], task)
    assert (work / 'fold_casme2_01' / 'predictions.json').is_file()
    # A finished fold is skipped when the array is resubmitted.
    res = _run(['bash', jobs / 'job_1000.sh'], task)
    assert 'finished before, skipped' in res.stdout


SLURM_CONF = '''ClusterName=raicltest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={d}/munge.sock
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
'''


def _stop_pidfile(path):
    try:
        pid = int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _install_slurm() -> None:
    """Install Debian's slurm-wlm and munge when this test can (root, apt).

    So the Slurm scale-out is tested on a fresh machine, CI included, rather
    than only where someone installed Slurm by hand; elsewhere the test skips
    with the reason. Nothing is installed without root and apt-get.
    """
    apt = shutil.which('apt-get')
    if os.geteuid() != 0 or apt is None or not Path('/etc/debian_version').is_file():
        return
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    cmd = [apt, 'install', '-y', '-q', '--no-install-recommends', 'slurm-wlm',
           'munge']
    try:
        res = subprocess.run(cmd, env=env, capture_output=True, text=True,
                             timeout=600)
        if res.returncode != 0:  # a stale package list: refresh once
            subprocess.run([apt, 'update', '-q'], env=env, capture_output=True,
                           timeout=300)
            subprocess.run(cmd, env=env, capture_output=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        return


@pytest.fixture
def local_slurm(tmp_path_factory):
    """A one-node Slurm on localhost (munged, slurmctld, slurmd) with its own
    config, ports, sockets and state under a temporary folder; stopped at
    the end. Skips when the packages are missing or a daemon does not
    start (the reason names the daemon and its error)."""
    need = ['munged', 'munge', 'slurmctld', 'slurmd', 'sbatch', 'squeue',
            'sinfo']
    path = os.environ['PATH'] + ':/usr/sbin:/sbin'
    missing = [b for b in need if shutil.which(b, path=path) is None]
    if missing:
        _install_slurm()
        missing = [b for b in need if shutil.which(b, path=path) is None]
    if missing:
        pytest.skip(f'Slurm/munge not installed (missing {missing}); '
                    'apt-get install slurm-wlm munge to run this test')
    if os.geteuid() != 0:
        pytest.skip('the local Slurm test starts slurmd as root')
    if not Path('/etc/munge/munge.key').is_file():
        pytest.skip('/etc/munge/munge.key missing (munge not set up)')
    d = Path('/tmp') / f'raicl_slurm_{os.getpid()}'
    shutil.rmtree(d, ignore_errors=True)
    (d / 'state').mkdir(parents=True)
    (d / 'spool').mkdir()
    d.chmod(0o755)  # munged wants its socket folder traversable
    host = socket.gethostname().split('.')[0]
    conf = d / 'slurm.conf'
    conf.write_text(SLURM_CONF.format(host=host, d=d, ctld_port=_free_port(),
                                      d_port=_free_port(), cpus=2))
    env = dict(os.environ, SLURM_CONF=str(conf), PATH=path)
    started = []

    def start(name, cmd, pidfile, log):
        res = subprocess.run(cmd, capture_output=True, text=True, env=env,
                             timeout=30)
        started.append(pidfile)
        if res.returncode != 0:
            tail = Path(log).read_text()[-2000:] if Path(log).is_file() else ''
            pytest.skip(f'{name} did not start (exit {res.returncode}): '
                        f'{res.stdout}{res.stderr}{tail}')

    try:
        start('munged', ['munged', '--force', '-S', str(d / 'munge.sock'),
                         f'--pid-file={d}/munged.pid',
                         f'--log-file={d}/munged.log',
                         f'--seed-file={d}/munged.seed'],
              d / 'munged.pid', d / 'munged.log')
        start('slurmctld', ['slurmctld', '-f', str(conf)],
              d / 'slurmctld.pid', d / 'slurmctld.log')
        start('slurmd', ['slurmd', '-f', str(conf), '-N', host],
              d / 'slurmd.pid', d / 'slurmd.log')
        deadline = time.time() + 30
        state = ''
        while time.time() < deadline:
            res = subprocess.run(['sinfo', '-h', '-o', '%T'], env=env,
                                 capture_output=True, text=True, timeout=60)
            state = (res.stdout + res.stderr).strip()
            if state == 'idle':
                break
            time.sleep(1)
        else:
            logs = ''.join(p.read_text()[-1500:] for p in
                           (d / 'slurmctld.log', d / 'slurmd.log')
                           if p.is_file())
            pytest.skip(f'the local Slurm node is not idle after 30 s '
                        f'(sinfo: {state!r}):\n{logs}')
        yield env
    finally:
        for pidfile in reversed(started):
            _stop_pidfile(pidfile)
        shutil.rmtree(d, ignore_errors=True)


def test_slurm_loso_on_local_slurm(local_slurm, tiny_config, tmp_path):
    """The whole tiny protocol through a real slurmctld/slurmd: 3 array
    tasks (1 core each, 2 at a time) and the dependent report job."""
    env = dict(local_slurm, OMP_NUM_THREADS='1', PYTHON=sys.executable,
               CPUS_PER_TASK='1')
    work = tmp_path / 'loso'
    _run(['bash', SLURM_LOSO, tiny_config, work, 'debug', *ONE_EPOCH], env)
    ids = dict(line.split('=') for line in
               (work / 'slurm' / 'jobs').read_text().split())
    deadline = time.time() + 240
    while time.time() < deadline:
        res = subprocess.run(['squeue', '-h', '-j',
                              f'{ids["array"]},{ids["report"]}'],
                             env=env, capture_output=True, text=True,
                             timeout=60)
        if res.returncode == 0 and not res.stdout.strip():
            break
        time.sleep(2)
    else:
        pytest.fail('Slurm jobs still queued/running after 240 s:\n'
                    + res.stdout)
    logs = ''.join(p.read_text()[-1500:] for p in
                   sorted((work / 'slurm').glob('*.out')))
    plan = json.loads((work / 'loso_plan.json').read_text())
    for key in plan['folds']:
        assert (work / f'fold_{key}' / 'predictions.json').is_file(), logs
    assert (work / 'report' / 'report.md').is_file(), logs
    out = (work / 'slurm' / 'report.out').read_text()
    assert '| All (casme2) |' in out and 'confusion_overall.png' in out
