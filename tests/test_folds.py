"""LOSO fold keys and --fold resolution."""
import pytest

from raicl_mm.datasets.folds import list_folds, resolve_fold
from raicl_mm.datasets.records import ClipRecord

FOLDS = ['casme2_01', 'casme2_06', 'samm_006', 'smic_s01']


def _rec(dataset, subject):
    return ClipRecord(dataset=dataset, subject=subject, clip_id='c',
                      label='negative', onset=0, apex=None, offset=1)


def test_folds_are_one_per_subject_in_natural_order():
    recs = [_rec('samm', '006'), _rec('casme2', '10'), _rec('casme2', '2'),
            _rec('casme2', '10'), _rec('smic', 's1')]
    assert list_folds(recs) == ['casme2_2', 'casme2_10', 'samm_006', 'smic_s1']


@pytest.mark.parametrize('given,key', [
    (0, 'casme2_01'), ('2', 'samm_006'), ('casme2_06', 'casme2_06'),
    ('01', 'casme2_01'), ('sub01', 'casme2_01'), ('006', 'samm_006'),
    ('S01', 'smic_s01'), ('SAMM_006', 'samm_006')])
def test_fold_by_index_key_or_subject(given, key):
    assert resolve_fold(given, FOLDS) == key


@pytest.mark.parametrize('given,message', [
    ('7', 'index out of range'), ('-1', 'index out of range'),
    ('sub99', 'no such subject'), ('xyz', 'casme2_01, casme2_06')])
def test_unknown_fold_is_named_with_the_choices(given, message):
    with pytest.raises(ValueError, match=message):
        resolve_fold(given, FOLDS)


def test_ambiguous_subject_is_refused():
    with pytest.raises(ValueError, match='ambiguous'):
        resolve_fold('01', ['casme2_01', 'other_01'])


# ---------------------------------------------------------------- hold-out
from raicl_mm.datasets.folds import holdout_split  # noqa: E402


def _split_rec(subject, split, clip='c'):
    return ClipRecord(dataset='dfme', subject=subject, clip_id=clip, label='anger', onset=0,
                      apex=None, offset=1, meta=dict(split=split))


def test_holdout_by_split_column_with_a_subject_disjoint_validation():
    recs = [_split_rec(f's{i}', 'train_data', f'c{j}') for i in range(10) for j in range(2)]
    recs += [_split_rec('t1', 'test_A'), _split_rec('t2', 'test_B')]
    out = holdout_split(recs, dict(by='column', train=['train_data'], test='test_A'))
    assert [r.subject for r in out['test']] == ['t1']
    assert [r.subject for r in out['unused']] == ['t2']
    train = {r.subject for r in out['train']}
    val = {r.subject for r in out['val']}
    assert len(val) == 2 and len(train) == 8 and not train & val   # 4:1 by subject
    again = holdout_split(recs, dict(by='column', train=['train_data'], test='test_A'))
    assert {r.subject for r in again['val']} == val                  # seeded
    assert {r.subject for r in holdout_split(recs, dict(
        by='column', train=['train_data'], test='test_A', seed=5))['val']} != val


def test_holdout_by_subject_lists():
    recs = [_split_rec(s, '') for s in ('a', 'b', 'c', 'd')]
    out = holdout_split(recs, dict(by='subjects', train=['a', 'dfme_b'], val=['c'],
                                   test=['d']))
    assert [[r.subject for r in out[k]] for k in ('train', 'val', 'test')] == [
        ['a', 'b'], ['c'], ['d']]


@pytest.mark.parametrize('spec,message', [
    (dict(by='rows', train=['x'], test=['y']), "holdout.by must be 'column'"),
    (dict(by='column', train=[], test=['test_A']), 'holdout.train must be a non-empty'),
    (dict(by='column', train=['train_data'], test=['train_data']), 'in both holdout.train'),
    (dict(by='column', train=['train_data'], test=['test_C']), 'test_C match no sample'),
    (dict(by='column', train=['train_data'], test=['test_A'], val_fraction=1.5),
     'val_fraction must be in'),
    (dict(by='column', train=['train_data'], test=['test_A'], folds=3), 'unknown key'),
])
def test_bad_holdout_specs_name_the_key(spec, message):
    recs = [_split_rec('s1', 'train_data'), _split_rec('s2', 'train_data'),
            _split_rec('t1', 'test_A')]
    with pytest.raises(ValueError, match=message):
        holdout_split(recs, spec)


def test_holdout_refuses_a_subject_in_two_splits_and_a_missing_column():
    recs = [_split_rec('s1', 'train_data'), _split_rec('s2', 'train_data'),
            _split_rec('s1', 'test_A', 'c2')]
    with pytest.raises(ValueError, match=r"subject dfme_s1 is in both '(train|val)' and "
                                         r"'test' \(e\.g\. dfme/s1/c2\)"):
        holdout_split(recs, dict(train=['train_data'], test=['test_A'], val_fraction=0.5))
    plain = ClipRecord(dataset='x', subject='1', clip_id='c', label='a', onset=0, apex=None,
                       offset=1)
    with pytest.raises(ValueError, match='has no split value'):
        holdout_split([plain], dict(train=['a'], test=['b']))
