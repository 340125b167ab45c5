"""RaICLRecognizer: the Siamese online/target network of Ra-ICL (Sec. 3.2-3.4).

Online branch E_theta = backbone -> GAP -> FC (+ the MRD encoder); the target
branch E_xi is an EMA copy of it (mmengine's ``ExponentialMovingAverage``),
never touched by gradients and updated only by ``TargetEMAHook`` after each
optimizer step (Eq. 3). The total loss is Eq. 15.
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmengine.logging import MessageHub
from mmengine.model import BaseModel, BaseModule, ExponentialMovingAverage

from .augment import BranchAugment, flip_back
from .backbones import build_backbone, last_feature_map
from .heads.cam_consistency import class_activation_maps


def component_seed(base: int, name: str) -> int:
    """The seed of one component's random stream: a hash of (seed, name).

    Each component (backbone, FC, MRD encoder, each branch's augmentation)
    draws its initial weights or its random numbers from its own stream, so
    that two configs at one seed that differ only in their heads start from
    bit-identical shared weights and see the same augmentations (paired
    comparisons; the benchmark's v3 design, docs/benchmark.md).
    """
    digest = hashlib.sha256(f'{int(base)}:{name}'.encode()).digest()
    return int.from_bytes(digest[:8], 'little') & ((1 << 63) - 1)


@contextlib.contextmanager
def seeded(base: int, name: str) -> Iterator[None]:
    """Run the block with torch's CPU stream seeded by (base, name), then
    give the global stream back untouched (``torch.random.fork_rng``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(component_seed(base, name))
        yield


class Branch(BaseModule):
    """One branch E_e: backbone, GAP + FC classifier, and the MRD encoder.

    Kept apart from the heads so that the target branch is a plain EMA copy of
    exactly these parameters (backbone, FC, MRD encoder with its projector).
    """

    def __init__(self, backbone: nn.Module, in_channels: int,
                 num_classes: int, region: Optional[nn.Module]):
        super().__init__(init_cfg=None)
        self.backbone = backbone
        self.fc = nn.Linear(in_channels, num_classes)
        self.region = region

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map F_e of the last conv layer, (B, C, H, W)."""
        out = self.backbone(x)
        if isinstance(out, (list, tuple)):
            out = out[-1]
        if out.dim() != 4:
            raise ValueError('RaICLRecognizer needs a 2D backbone whose last '
                             f'output is (B, C, H, W); got {tuple(out.shape)}')
        return out

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        """GAP then FC: the logits W f'_e of Eq. 4."""
        return self.fc(feats.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor, with_region: bool = True) -> dict:
        feats = self.forward_features(x)
        out = dict(feats=feats, logits=self.forward_head(feats))
        if with_region and self.region is not None:
            out['region'] = self.region(feats)
        return out


@MODELS.register_module()
class RaICLRecognizer(BaseModel):
    """Region-aware Instance Consistency Learning.

    Args:
        backbone: Config of any registered 2D backbone (mmaction2, mmpretrain
            with the ``mmpretrain.`` prefix, torchvision via mmaction2's
            ``torchvision.`` prefix) whose last output is a feature map.
        num_classes: L.
        in_channels: C of the backbone's last feature map; inferred with a
            dry run when None.
        cam_head: ``CAMConsistencyHead`` config (IRC); None turns IRC off.
        mrd_head: ``RegionDiscoveryHead`` config (MRD); None turns MRD off.
        cls_loss_weight: lambda_1 of Eq. 15.
        tau: Target decay rate of Eq. 3 (used by ``TargetEMAHook``).
        symmetric: Feed both instances to both branches and use both
            directions (Eq. 10 and 14 are written symmetric). L_cls and L_acl
            are averaged over the two directions, L_align and L_c summed as in
            Eq. 10 / 14. False = the one-direction reading (I_p online, I_q
            target) for every term.
        augment_online: ``BranchAugment`` kwargs for T_theta.
        augment_target: ``BranchAugment`` kwargs for T_xi; its ``flip`` (the
            certain horizontal flip) makes the model flip the target's CAMs
            and heat maps back before comparing them.
        data_preprocessor: Defaults to ``InstanceDataPreprocessor``.
        init_seed: Base of the per-component streams (see
            :func:`component_seed`): each of backbone, FC, MRD encoder and
            the two branches' augmentations draws from its own stream seeded
            by (init_seed, its name). None (default) = the run's seed
            (``torch.initial_seed()`` when the model is built, which
            mmengine's ``randomness.seed`` sets first), so that two configs
            at one seed share every common component's initial weights and
            augmentations. Set it apart from the seed for a second
            initial-weight draw with the same data (the benchmark's noise
            floor).
        score_target: In ``predict``, also score the target branch E_xi on
            the same views and put its scores in each sample's
            ``target_pred_score`` (``UF1UARMetric`` reports them as
            ``target/UF1`` ...): whether the teacher has learned.
        grad_probe_interval: Every this many training iterations, log the
            norm of each loss term's gradient at the backbone's parameters
            (``grad_cls``, ``grad_acl``, ``grad_align``, ``grad_c``): which
            term drives the shared features. 0 (default) = never; the probe
            costs one extra backward pass per term and changes no gradient.
            mmengine's logger repeats a scalar's latest value on the
            iterations in between, so an epoch's mean of the logged values
            is the mean of that epoch's probes when the interval divides the
            iterations of an epoch (the benchmark grid: 5 of 10).
    """

    def __init__(self, backbone: dict, num_classes: int,
                 in_channels: Optional[int] = None,
                 cam_head: Optional[dict] = dict(type='CAMConsistencyHead'),
                 mrd_head: Optional[dict] = dict(type='RegionDiscoveryHead'),
                 cls_loss_weight: float = 0.5, tau: float = 0.99,
                 symmetric: bool = True,
                 augment_online: Optional[dict] = None,
                 augment_target: Optional[dict] = None,
                 grad_probe_interval: int = 0,
                 data_preprocessor: Optional[dict] = None,
                 init_seed: Optional[int] = None,
                 score_target: bool = True,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='InstanceDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if not 0.0 <= tau <= 1.0:
            raise ValueError(f'tau must be in [0, 1], got {tau}')
        self.num_classes = num_classes
        self.cls_loss_weight = cls_loss_weight
        self.tau = tau
        self.symmetric = symmetric
        self.score_target = bool(score_target)
        # Paired initial weights: every component from its own seeded stream
        # (component_seed), never from the order in which heads are built.
        self.init_seed = int(torch.initial_seed() if init_seed is None
                             else init_seed) & ((1 << 63) - 1)
        with seeded(self.init_seed, 'backbone'):
            backbone_module = build_backbone(backbone)
            # Refused here, not at the first forward, when it ends in no map.
            feats = last_feature_map(backbone_module, backbone)
        if in_channels is None:
            in_channels = int(feats.shape[1])
        self.cam_head = MODELS.build(cam_head) if cam_head else None
        with seeded(self.init_seed, 'mrd_head'):
            self.mrd_head = MODELS.build(mrd_head) if mrd_head else None
        with seeded(self.init_seed, 'region'):
            region = (self.mrd_head.build_encoder(in_channels)
                      if self.mrd_head is not None else None)
        with seeded(self.init_seed, 'fc'):
            self.online = Branch(backbone_module, in_channels, num_classes,
                                 region)
        self.augment_online = BranchAugment(**(augment_online or {}))
        self.augment_target = BranchAugment(
            **(augment_target or dict(flip=True)))
        self.reseed_streams(self.init_seed)
        # Target E_xi: mmengine's EMA container. Its ``momentum`` is the
        # weight of the NEW value, so Eq. 3's tau is momentum = 1 - tau.
        # mmengine asserts 0 < momentum < 1; Eq. 3 allows tau in [0, 1]
        # (lerp_ handles weights 0 and 1 exactly), so set it afterwards.
        self.target = ExponentialMovingAverage(
            self.online, momentum=0.5, update_buffers=False)
        self.target.momentum = 1.0 - tau
        # The deep copy already is xi_0 = theta_0; skip mmengine's "copy on
        # the first update" so that every update is exactly Eq. 3.
        self.target.steps.fill_(1)
        self.single_instance_pairs = 0
        if int(grad_probe_interval) < 0:
            raise ValueError('grad_probe_interval must be >= 0, got '
                             f'{grad_probe_interval}')
        self.grad_probe_interval = int(grad_probe_interval)
        self._loss_calls = 0

    # ------------------------------------------------------------------ API
    def components(self) -> List[Tuple[str, Optional[nn.Module]]]:
        """The online branch's parts that own initial weights, by name."""
        return [('backbone', self.online.backbone), ('fc', self.online.fc),
                ('region', self.online.region), ('mrd_head', self.mrd_head)]

    def init_weights(self) -> None:
        """Initialise the online branch, then start the target as its copy.

        Each component's ``init_weights`` draws from its own stream
        (:func:`seeded`), so a component's initial weights do not depend on
        which other heads exist. An ``init_cfg`` of the whole model (e.g. a
        pretrained checkpoint) is applied by mmengine as usual.
        """
        if self.init_cfg:
            super().init_weights()
        else:
            for name, module in self.components():
                if module is not None and hasattr(module, 'init_weights'):
                    with seeded(self.init_seed, name):
                        module.init_weights()
            self._is_init = True
        self.sync_target()

    def reseed_streams(self, seed: int) -> None:
        """Seed the two branches' augmentation streams from (seed, branch).

        Called at construction and by ``EpochSeedHook`` at every epoch (so a
        resumed run draws what an uninterrupted one would).
        """
        self.augment_online.reseed(component_seed(seed, 'augment_online'))
        self.augment_target.reseed(component_seed(seed, 'augment_target'))

    @torch.no_grad()
    def sync_target(self) -> None:
        """xi <- theta (parameters and buffers): the start of Eq. 3."""
        for t, o in zip(self.target.module.state_dict().values(),
                        self.online.state_dict().values()):
            t.copy_(o)

    def update_target(self) -> None:
        """xi <- tau * xi + (1 - tau) * theta (Eq. 3); called by TargetEMAHook."""
        self.target.update_parameters(self.online)

    @property
    def target_branch(self) -> Branch:
        return self.target.module

    def forward(self, inputs: torch.Tensor, data_samples=None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs)
        raise RuntimeError(f'Invalid mode "{mode}": use loss, predict or '
                           'tensor')

    def _forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs[:, 0] if inputs.dim() == 5 else inputs
        return self.online(x, with_region=False)['logits']

    def cam(self, x: torch.Tensor) -> torch.Tensor:
        """CAMs of all classes for (B, 3, H, W) instances (online branch)."""
        feats = self.online.forward_features(x)
        return class_activation_maps(feats, self.online.fc.weight)

    def predict(self, inputs: torch.Tensor, data_samples: List) -> List:
        """Online branch only, on the views the test pipeline passed.

        One view per sample: the middle instance (paper A.1.3,
        ``SampleInstancePair(test_mode=True)``). Several views (``ensemble=
        True``): the mean of the softmax over them, see
        :meth:`instance_scores`.
        """
        # nanmean: a padded view neither counts nor shifts the mean.
        scores = self.instance_scores(inputs).nanmean(dim=1)
        for ds, s in zip(data_samples, scores):
            ds.set_pred_score(s.detach())
            ds.set_pred_label(s.argmax(dim=-1, keepdim=True).detach())
        if self.score_target:
            # The teacher E_xi on the same views: has it learned?
            t_scores = self.instance_scores(
                inputs, branch=self.target_branch).nanmean(dim=1)
            for ds, s in zip(data_samples, t_scores):
                ds.set_field(s.detach(), 'target_pred_score')
        return data_samples

    def instance_scores(self, inputs: torch.Tensor,
                        branch: Optional[Branch] = None) -> torch.Tensor:
        """Softmax of the online branch per view, (B, V, L).

        ``inputs`` is (B, 3, H, W) or (B, V, 3, H, W). All-NaN views (the
        padding of ``SampleInstancePair(pad_to=...)``) are not run and get
        NaN scores; the ensemble prediction is the mean over the other views,
        ``s = 1/|V| sum_v softmax(W f'_v)`` (multi-instance ensemble
        inference, the paper's future work). ``branch``: the online branch
        (default) or the target branch.
        """
        x = inputs[:, None] if inputs.dim() == 4 else inputs
        b, v = x.shape[:2]
        flat = x.flatten(0, 1)
        valid = ~torch.isnan(flat).flatten(1).all(dim=1)
        if not bool(valid.view(b, v).any(dim=1).all()):
            raise ValueError('predict: a sample has only padding views '
                             '(all NaN)')
        out = torch.full((b * v, self.num_classes), float('nan'),
                         device=flat.device)
        branch = self.online if branch is None else branch
        logits = branch(flat[valid], with_region=False)['logits']
        out[valid] = logits.softmax(dim=-1).to(out.dtype)
        return out.view(b, v, -1)

    # ----------------------------------------------------------------- loss
    def loss(self, inputs: torch.Tensor, data_samples: List) -> Dict:
        """Eq. 15: lambda1 L_cls + lambda2 L_acl + lambda3 (L_align + L_c).

        Args:
            inputs: (B, 2, 3, H, W), the instance pair (I_p, I_q) per sample.
            data_samples: ``ActionDataSample`` with ``gt_label``.
        """
        if inputs.dim() != 5 or inputs.shape[1] != 2:
            raise ValueError('training needs an instance pair per sample: '
                             f'inputs (B, 2, 3, H, W), got {tuple(inputs.shape)}'
                             ' (use SampleInstancePair in the train pipeline)')
        labels = torch.cat([ds.gt_label.reshape(1) for ds in data_samples]
                           ).to(inputs.device).long()
        x_p, x_q = inputs[:, 0], inputs[:, 1]
        if self.symmetric:
            online_raw = torch.cat([x_p, x_q])
            target_raw = torch.cat([x_q, x_p])
            labels = torch.cat([labels, labels])
            directions = 2
        else:
            online_raw, target_raw = x_p, x_q
            directions = 1
        online_in = self.augment_online(online_raw)         # T_theta
        need_target = self.cam_head is not None or self.mrd_head is not None
        on = self.online(online_in, with_region=self.mrd_head is not None)
        losses = {}
        if self.cls_loss_weight:
            # Eq. 4 (mean over both directions when symmetric).
            losses['loss_cls'] = self.cls_loss_weight * F.cross_entropy(
                on['logits'], labels)
        if need_target:
            with torch.no_grad():
                target_in = self.augment_target(target_raw)     # T_xi
                tg = self.target_branch(
                    target_in, with_region=self.mrd_head is not None)
            unflip = (flip_back if self.augment_target.flip
                      else (lambda t: t))
        if self.cam_head is not None and self.cam_head.loss_weight:
            head = self.cam_head
            cam_on = head.online_cams(on['feats'], self.online.fc.weight)
            if head.reference == 'online':
                # Guo et al. 2019: the current network on the flipped view.
                cam_tg = unflip(head.online_cams(
                    self.online.forward_features(target_in),
                    self.online.fc.weight))
            else:
                cam_tg = unflip(class_activation_maps(             # Eq. 5
                    tg['feats'], self.target_branch.fc.weight))
            losses['loss_acl'] = head.loss_weight * head.loss(    # Eq. 6
                cam_on, cam_tg)
        if self.cam_head is not None:
            # How far the online CAMs are from flat (IRC can flatten them).
            losses['cam_spatial_std'] = self.cam_head.spatial_std(
                class_activation_maps(on['feats'].detach(),
                                      self.online.fc.weight.detach()))
        if self.mrd_head is not None and self.mrd_head.loss_weight:
            r_on, r_tg = on['region'], tg['region']
            mrd = self.mrd_head
            # Eq. 10 / 14 sum the two directions; the batch mean over the
            # concatenated directions times `directions` is that sum
            # (``sum_directions=False``: the direction mean, as L_cls).
            w = mrd.loss_weight * (directions if mrd.sum_directions else 1)
            target = mrd.target_assignments(unflip(r_tg['sim']))
            if 'align' in mrd.loss_terms:
                losses['loss_align'] = w * mrd.loss_align(          # Eq. 10
                    r_on['logits'], target)
            losses.update(mrd.assignment_stats(r_on['probs']))
            if 'c' in mrd.loss_terms:
                losses['loss_c'] = w * mrd.loss_consistency(        # Eq. 14
                    r_on['z'], r_tg['z'])
        self._check_finite(losses)
        self._loss_calls += 1
        if (self.grad_probe_interval and torch.is_grad_enabled()
                and (self._loss_calls - 1) % self.grad_probe_interval == 0):
            losses.update(self.backbone_grad_norms(losses))
        with torch.no_grad():
            losses['acc'] = (on['logits'].argmax(-1) == labels).float().mean()
        single = sum(int(ds.metainfo.get('single_instance', False))
                     for ds in data_samples)
        self.single_instance_pairs += single
        return losses

    def backbone_grad_norms(self, losses: Dict[str, torch.Tensor]
                            ) -> Dict[str, torch.Tensor]:
        """L2 norm of each loss term's gradient at the backbone, ``grad_*``.

        ``torch.autograd.grad`` with the graph kept: nothing is accumulated
        into ``.grad``, so training is unchanged. Keys hold no ``loss`` (so
        mmengine's ``parse_losses`` does not add them to the total).
        """
        params = [p for p in self.online.backbone.parameters()
                  if p.requires_grad]
        out = {}
        for key, value in losses.items():
            if not key.startswith('loss_') or not value.requires_grad:
                continue
            grads = torch.autograd.grad(value, params, retain_graph=True,
                                        allow_unused=True)
            sq = sum(float(g.detach().float().pow(2).sum())
                     for g in grads if g is not None)
            out['grad_' + key[len('loss_'):]] = torch.tensor(
                sq ** 0.5, device=value.device)
        return out

    @staticmethod
    def _check_finite(losses: Dict[str, torch.Tensor]) -> None:
        bad = [k for k, v in losses.items() if not torch.isfinite(v).all()]
        if bad:
            it = MessageHub.get_current_instance().get_info('iter')
            vals = ', '.join(f'{k}={losses[k].item()}' for k in bad)
            raise FloatingPointError(
                f'non-finite loss at iteration {it}: {vals}. Lower the '
                'learning rate, check the flow cache for NaN/inf instances, '
                'or train with --amp off.')
