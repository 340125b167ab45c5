# Paper Sec. 4.1: Adam, lr 1e-3, weight decay 1e-4, batch 32, exponential
# decay gamma 0.9 per epoch, 100 epochs.
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4))
param_scheduler = [dict(type='ExponentialLR', gamma=0.9, by_epoch=True)]
# Validation = scoring the LOSO test subject once, after the last epoch.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100,
                 val_begin=100, val_interval=100)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=32)
