"""Issue 20, case 8: whole frames of SAMM / CAS(ME)^3 are aligned by default or
refused with a line that says how."""
import numpy as np
import pytest
from PIL import Image

from raicl_mm.datasets.dataset import check_cropped
from raicl_mm.datasets.sources import build_records
from raicl_mm.flow import FlowConfig

from conftest import REPO
from test_sources import SAMM_HEADER, write_sheet


def _samm(tmp_path, size):
    rows = [['006', '006_1_2', 1, 10, 12, 14, 5, 'Micro', '4', 'Anger', 3, None]]
    sheet = write_sheet(tmp_path / 'samm.xlsx', SAMM_HEADER, rows, 'MICRO_ONLY')
    folder = tmp_path / 'SAMM' / '006' / '006_1_2'
    folder.mkdir(parents=True)
    for n in range(10, 15):
        Image.fromarray(np.zeros(size[::-1], np.uint8)).save(folder / f'006_{n:05d}.jpg')
    return build_records('samm', dict(samm=tmp_path / 'SAMM'), dict(samm=sheet)).records


def test_whole_samm_frames_without_a_crop_are_refused_saying_how(tmp_path):
    records = _samm(tmp_path, (960, 650))
    with pytest.raises(ValueError, match=r"samm frames are whole frames \(960x650, e\.g\. "
                                         r".*006_00010\.jpg\) and flow_cfg\.face_crop is "
                                         r"None: set flow_cfg\.face_crop='landmarks'"):
        check_cropped(records, FlowConfig())
    check_cropped(records, FlowConfig(face_crop='landmarks'))      # aligned: fine
    check_cropped(records, FlowConfig(), uncropped='allow')          # on purpose


def test_cropped_samm_frames_pass(tmp_path):
    check_cropped(_samm(tmp_path, (240, 280)), FlowConfig())


@pytest.mark.parametrize('n', [3, 4, 7])
def test_casme3_configs_align_with_the_landmark_crop(n):
    from raicl_mm.engine.cli import load_checked_config
    cfg = load_checked_config(str(REPO / 'configs' / f'raicl_casme3_{n}cls.py'))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.flow_cfg.face_crop == 'landmarks'
