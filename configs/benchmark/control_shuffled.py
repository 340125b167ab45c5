# Label-shuffled control: M6 trained and scored on the benchmark's frames
# with the sheet's labels permuted over the set (class counts kept). A
# protocol without leakage scores chance here (UF1 about 33).
# The shuffled set's frames are byte-identical to the benchmark's (the
# permutation draws from its own random stream); the frames are read from the
# benchmark's folder so that the flow cache is shared, only the sheet differs.
_base_ = ['./m6_ours.py']
__data = dict(
    synthetic=dict(out='data/synthetic_benchmark_v2_shuffled', shuffle_labels=1),
    ann_files=dict(
        casme2='data/synthetic_benchmark_v2_shuffled/CASME2-coding-synthetic.xlsx'))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
