# Benchmark v3, the label-shuffled control: M6 on the same frames with the
# sheet's labels permuted over the set (it must fall to chance).
_base_ = ['./m6_ours.py']
__data = dict(
    synthetic=dict(out='data/synthetic_benchmark_v3_shuffled', shuffle_labels=1),
    ann_files=dict(
        casme2='data/synthetic_benchmark_v3_shuffled/CASME2-coding-synthetic.xlsx'))
train_dataloader = dict(dataset=__data)
val_dataloader = dict(dataset=__data)
test_dataloader = dict(dataset=__data)
