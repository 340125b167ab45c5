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
