# Label-shuffled control: M6 trained and scored on the benchmark's frames
# with the sheet's labels permuted over the set (class counts kept). A
# protocol without leakage scores chance here (UF1 about 33).
_base_ = ['./m6_ours.py']
__root = 'data/synthetic_benchmark_shuffled'
__data = dict(
    synthetic=dict(out=__root, shuffle_labels=1),
    data_roots=dict(casme2=__root + '/Cropped'),
    ann_files=dict(casme2=__root + '/CASME2-coding-synthetic.xlsx'))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
