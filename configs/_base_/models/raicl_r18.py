# Ra-ICL with a randomly initialised ResNet18 (paper Sec. 4.1).
model = dict(
    type='RaICLRecognizer',
    # Any registered 2D backbone whose last output is a feature map works.
    backbone=dict(type='mmpretrain.ResNet', depth=18, out_indices=(3, ),
                  norm_cfg=dict(type='BN', requires_grad=True)),
    num_classes=3,
    cls_loss_weight=0.5,                                  # lambda_1
    cam_head=dict(type='CAMConsistencyHead', loss_weight=0.5,  # lambda_2
                  distance='squared'),
    mrd_head=dict(type='RegionDiscoveryHead', num_queries=8,
                  embed_dim=128, proj_hidden=256, pred_hidden=256,
                  num_decoder_layers=2, num_heads=4,
                  # MRD's assignment target (docs/benchmark.md): Eq. 8-9 as
                  # printed ('literal') keep P uniform and L_align at ln 8 from
                  # the first step to the last; 'sharpen' (FRA / DINO: target
                  # at temperature 0.04 with centering, online P at 0.1)
                  # trains. 'literal' with temperature=1.0 is the printed one.
                  align_target='sharpen', temperature=0.1,
                  teacher_temperature=0.04,
                  loss_weight=0.5,                        # lambda_3
                  # Eq. 14 is a similarity: the loss is its negative, -cos
                  # (shift 2, scale 2 = BYOL's 2 - 2cos, twice the gradient);
                  # every term is the mean over the two directions
                  # (sum_directions=True: MRD's summed as Eq. 10 / 14 write
                  # them, twice L_cls's weight). On the benchmark MRD's damage
                  # grows with its gradient's scale (docs/benchmark.md).
                  sum_directions=False,
                  consistency_loss=dict(type='mmpretrain.CosineSimilarityLoss',
                                        shift_factor=0.0, scale_factor=1.0)),
    tau=0.99,                                             # Eq. 3
    symmetric=True,
    augment_online=dict(jitter=0.2, blur_prob=0.5, blur_sigma=(0.1, 1.0),
                        flip=False),                      # T_theta
    augment_target=dict(jitter=0.2, blur_prob=0.5, blur_sigma=(0.1, 1.0),
                        flip=True, flow_aware_flip=True),  # T_xi
    data_preprocessor=dict(type='InstanceDataPreprocessor'))
