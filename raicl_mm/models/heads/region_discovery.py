"""Self-supervised Multi-Region Discovery (MRD, paper Sec. 3.3, Eq. 7-14).

Two pieces, because the target branch needs a copy of one and not the other:

* :class:`MultiRegionEncoder` -- lives in each branch (online and, as an EMA
  copy, target): learnable facial queries, a Transformer decoder in which the
  queries attend to the feature map, the mask MLP that gives the facial mask
  embeddings Q_e, the projector H_e, the heat maps S_e / P_e and the region
  embeddings z_e^m.
* :class:`RegionDiscoveryHead` -- online only: the predictor G_theta and the
  two losses L_align (Eq. 10) and L_c (Eq. 14).
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmengine.dist import all_reduce
from mmpretrain.models.utils import build_2d_sincos_position_embedding


def sine_position_encoding(h: int, w: int, dim: int,
                           device=None, dtype=None) -> torch.Tensor:
    """2D sine-cosine position encoding of an (h, w) map, (h*w, dim).

    mmpretrain's ``build_2d_sincos_position_embedding`` (MAE / MoCo v3), asked
    for ``(w, h)``: its rows then follow the row-major ``flatten`` of an
    (h, w) feature map (its meshgrid is ``'ij'`` over (w, h)), the first half
    of the channels encoding the row and the second the column. Computed for
    the feature map's size at run time, so any input size works.
    """
    if dim % 4:
        raise ValueError(f'embed_dim must be divisible by 4, got {dim}')
    pe = build_2d_sincos_position_embedding((w, h), dim)[0]
    return pe.to(device=device, dtype=dtype or pe.dtype)


def _projector(in_channels: int, hid_channels: int, out_channels: int) -> nn.Module:
    # mmpretrain's NonLinearNeck is BYOL's projector MLP (Linear-BN-ReLU-Linear);
    # used on (rows, C) inputs, so no pooling and plain BN1d.
    return MODELS.build(dict(
        type='mmpretrain.NonLinearNeck', in_channels=in_channels,
        hid_channels=hid_channels, out_channels=out_channels,
        with_avg_pool=False, norm_cfg=dict(type='BN1d')))


class MultiRegionEncoder(nn.Module):
    """Facial queries -> mask embeddings -> probabilistic heat maps -> z^m.

    Args:
        in_channels: C, channels of the backbone's last feature map F_e.
        num_queries: Number of learnable facial queries (8 in the paper).
        embed_dim: D, dimension of mask embeddings and of H_e's output.
        proj_hidden: Hidden width of the projector H_e.
        num_decoder_layers: Transformer decoder depth.
        num_heads: Attention heads of the decoder.
        temperature: Divides the cosine similarities before the softmax of
            Eq. 8 (1.0 = the equation as printed).
        detach_input: Stop MRD's gradients at F_e (a diagnostic: MRD then
            trains only its own encoder and cannot change the backbone).
    """

    def __init__(self, in_channels: int, num_queries: int = 8,
                 embed_dim: int = 128, proj_hidden: int = 256,
                 num_decoder_layers: int = 2, num_heads: int = 4,
                 temperature: float = 1.0, detach_input: bool = False):
        super().__init__()
        self.num_queries = num_queries
        self.temperature = temperature
        self.detach_input = detach_input
        # Facial queries: learnable positional embeddings (MaskFormer).
        self.queries = nn.Embedding(num_queries, embed_dim)
        self.input_proj = nn.Conv2d(in_channels, embed_dim, 1)
        layer = nn.TransformerDecoderLayer(
            d_model=embed_dim, nhead=num_heads, dim_feedforward=2 * embed_dim,
            dropout=0.0, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, num_decoder_layers)
        # MLP after the decoder -> facial mask embeddings Q_e (N x D).
        self.mask_mlp = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.ReLU(inplace=True),
            nn.Linear(embed_dim, embed_dim), nn.ReLU(inplace=True),
            nn.Linear(embed_dim, embed_dim))
        # Projector H_e: dense features F^dense (Eq. 7) and z^m (Eq. 12).
        self.projector = _projector(in_channels, proj_hidden, embed_dim)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Apply H_e to rows of C-dim vectors, (..., C) -> (..., D)."""
        shape = x.shape
        out = self.projector((x.reshape(-1, shape[-1]),))[0]
        return out.reshape(*shape[:-1], out.shape[-1])

    def forward(self, feats: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Run MRD on a batch of feature maps F_e, (B, C, H, W).

        Returns:
            dict: ``logits`` S_e / temperature (B, N, H, W); ``probs`` P_e
            (Eq. 8); ``mask_embed`` Q_e (B, N, D); ``region`` h_e^m (B, N, C,
            Eq. 11); ``z`` z_e^m (B, N, D, Eq. 12); ``sim`` the cosines S_e
            of Eq. 7 (B, N, H, W), from which the head forms the target.
        """
        if self.detach_input:
            feats = feats.detach()
        b, c, h, w = feats.shape
        memory = self.input_proj(feats).flatten(2).transpose(1, 2)
        memory = memory + sine_position_encoding(
            h, w, memory.shape[-1], feats.device, memory.dtype)[None]
        tgt = self.queries.weight[None].expand(b, -1, -1)
        q = self.mask_mlp(self.decoder(tgt, memory))            # Q_e
        pix = feats.flatten(2).transpose(1, 2)                  # (B, HW, C)
        dense = self.project(pix)                               # F^dense
        # Eq. 7: cosine similarity between each mask embedding and each pixel.
        sim = torch.einsum('bnd,bpd->bnp', F.normalize(q, dim=-1),
                           F.normalize(dense, dim=-1))
        logits = (sim / self.temperature).reshape(b, self.num_queries, h, w)
        probs = logits.softmax(dim=1)                           # Eq. 8
        # Eq. 11: weighted average pooling of F_e with each heat map.
        weights = probs.flatten(2)
        region = torch.einsum('bnp,bpc->bnc', weights, pix) / (
            weights.sum(-1, keepdim=True) + 1e-6)
        z = self.project(region)                                # Eq. 12
        return dict(logits=logits, probs=probs, mask_embed=q, region=region,
                    z=z, sim=sim.reshape(b, self.num_queries, h, w))


@MODELS.register_module()
class RegionDiscoveryHead(nn.Module):
    """MRD losses and the online predictor G_theta.

    Args:
        num_queries: Facial queries (paper: 8; supplement 7.2).
        embed_dim: D.
        proj_hidden: Hidden width of H_e.
        pred_hidden: Hidden width of the predictor G_theta.
        num_decoder_layers: Decoder depth.
        num_heads: Decoder heads.
        temperature: Softmax temperature of Eq. 8 for the online P_theta
            (1.0 = as printed; the student temperature of DINO / SwAV).
        loss_weight: lambda_3 of Eq. 15 (multiplies L_align + L_c).
        consistency_loss: Loss between G(z_theta^m) and z_xi^m. Eq. 13-14
            write a *similarity*; a loss must minimise its negative. Default is
            the written similarity negated, ``-cos`` (``CosineSimilarityLoss``
            with shift 0 and scale 1); ``shift_factor=2, scale_factor=2``
            gives BYOL's ``2 - 2 cos``, twice the gradient (docs/benchmark.md:
            on the benchmark, MRD's damage grows with its gradient's scale).
        align_target: How the target assignment of Eq. 9 is formed from the
            target's cosines S_xi:

            * ``'literal'`` -- Eq. 8 as printed, P_xi = softmax(S_xi /
              temperature). A per-pixel cross-entropy between two softmaxes
              of the same kind has a trivial minimum, uniform assignments
              (measured: ``loss_align`` stays at ln N).
            * ``'sharpen'`` -- DINO / FRA: P_xi = softmax((S_xi - c) /
              teacher_temperature), c an EMA (``center_momentum``) of the
              batch's mean cosine per query. Sharpening forbids the uniform
              solution, centering the one-query-for-everything solution.
            * ``'sinkhorn'`` -- SwAV: P_xi from ``sinkhorn_iters`` Sinkhorn-
              Knopp steps on exp(S_xi / teacher_temperature) over all pixels
              of the batch: every query receives an equal share of the
              batch's pixels (equipartition), each pixel a distribution.
        teacher_temperature: Temperature of the target (``sharpen``: FRA's
            ``--teacher_temp 0.04``; ``sinkhorn``: SwAV's epsilon 0.05).
        center_momentum: EMA momentum of the center c (DINO: 0.9).
        sinkhorn_iters: Sinkhorn-Knopp iterations (SwAV: 3).
        sum_directions: Eq. 10 and 14 *sum* the two directions (I_p and I_q
            online); Eq. 4 and 6 are written for one. False (default) treats
            the four terms alike, each the mean over the directions: under
            Adam, summing all four over the directions is the same up to a
            global scale. True sums only MRD's, which with ``symmetric=True``
            weighs L_align and L_c twice against L_cls and L_acl.
        loss_terms: Which of MRD's terms are trained: ``('align', 'c')``
            (Eq. 15); one of them alone is a diagnostic.
        detach_input: See :class:`MultiRegionEncoder` (a diagnostic).
        batch_mean_embeddings: False (Ra-ICL, Eq. 12-14 per image): L_c
            compares each image's N mask embeddings. True: as FRA (Gao &
            Patras 2024) does, the embeddings are averaged over the batch
            first, so L_c compares N batch-level region prototypes.
    """

    ALIGN_TARGETS = ('literal', 'sharpen', 'sinkhorn')

    def __init__(self, num_queries: int = 8, embed_dim: int = 128,
                 proj_hidden: int = 256, pred_hidden: int = 256,
                 num_decoder_layers: int = 2, num_heads: int = 4,
                 temperature: float = 1.0, loss_weight: float = 0.5,
                 consistency_loss: Optional[dict] = None,
                 align_target: str = 'literal',
                 teacher_temperature: float = 0.04,
                 center_momentum: float = 0.9, sinkhorn_iters: int = 3,
                 sum_directions: bool = False,
                 loss_terms=('align', 'c'), detach_input: bool = False,
                 batch_mean_embeddings: bool = False):
        super().__init__()
        loss_terms = tuple(loss_terms)
        if not loss_terms or set(loss_terms) - {'align', 'c'}:
            raise ValueError('RegionDiscoveryHead: loss_terms must be a '
                             "non-empty subset of ('align', 'c'), got "
                             f'{loss_terms!r}')
        if align_target not in self.ALIGN_TARGETS:
            raise ValueError(f'RegionDiscoveryHead: align_target '
                             f'{align_target!r} not in {self.ALIGN_TARGETS}')
        for name, value in (('temperature', temperature),
                            ('teacher_temperature', teacher_temperature)):
            if not value > 0:
                raise ValueError(f'RegionDiscoveryHead: {name} must be > 0, '
                                 f'got {value}')
        if not 0.0 <= center_momentum < 1.0:
            raise ValueError('RegionDiscoveryHead: center_momentum must lie in '
                             f'[0, 1), got {center_momentum}')
        if int(sinkhorn_iters) < 1:
            raise ValueError('RegionDiscoveryHead: sinkhorn_iters must be >= 1,'
                             f' got {sinkhorn_iters}')
        self.encoder_cfg = dict(num_queries=num_queries, embed_dim=embed_dim,
                                proj_hidden=proj_hidden,
                                num_decoder_layers=num_decoder_layers,
                                num_heads=num_heads, temperature=temperature,
                                detach_input=detach_input)
        self.sum_directions = bool(sum_directions)
        self.batch_mean_embeddings = bool(batch_mean_embeddings)
        self.loss_terms = loss_terms
        self.loss_weight = loss_weight
        self.temperature = temperature
        self.align_target = align_target
        self.teacher_temperature = teacher_temperature
        self.center_momentum = center_momentum
        self.sinkhorn_iters = int(sinkhorn_iters)
        # DINO's center c of the target cosines, one value per query.
        self.register_buffer('center', torch.zeros(1, num_queries, 1, 1))
        if consistency_loss is None:
            consistency_loss = dict(type='mmpretrain.CosineSimilarityLoss',
                                    shift_factor=0.0, scale_factor=1.0)
        # mmpretrain's LatentPredictHead = predictor MLP + loss against a
        # detached target: exactly G_theta and Eq. 13.
        self.predictor = MODELS.build(dict(
            type='mmpretrain.LatentPredictHead', loss=consistency_loss,
            predictor=dict(type='mmpretrain.NonLinearNeck',
                           in_channels=embed_dim, hid_channels=pred_hidden,
                           out_channels=embed_dim, with_avg_pool=False,
                           norm_cfg=dict(type='BN1d'))))

    def build_encoder(self, in_channels: int) -> MultiRegionEncoder:
        """A fresh per-branch encoder for feature maps with ``in_channels``."""
        return MultiRegionEncoder(in_channels, **self.encoder_cfg)

    @torch.no_grad()
    def target_assignments(self, sim_target: torch.Tensor) -> torch.Tensor:
        """The target P_xi of Eq. 9 from the target's cosines, (B, N, H, W).

        See ``align_target``; in training mode ``'sharpen'`` also moves the
        center toward this batch's mean (after using it, as DINO does).
        """
        if self.align_target == 'literal':
            return (sim_target / self.temperature).softmax(dim=1)   # Eq. 8
        if self.align_target == 'sharpen':
            out = ((sim_target - self.center) /
                   self.teacher_temperature).softmax(dim=1)
            if self.training:
                mean = sim_target.mean(dim=(0, 2, 3), keepdim=True)
                all_reduce(mean, op='mean')  # no-op outside DDP
                self.center.mul_(self.center_momentum).add_(
                    mean, alpha=1.0 - self.center_momentum)
            return out
        return self._sinkhorn(sim_target)

    def _sinkhorn(self, sim: torch.Tensor) -> torch.Tensor:
        """SwAV's Sinkhorn-Knopp over the batch's pixels (one process).

        Q (N x BHW) = exp(S / eps), rows scaled to sum 1/N, columns to 1/BHW,
        alternately; returned per pixel (columns sum to 1). Written here:
        mmpretrain's SwAV head keeps it private to its loss.
        """
        b, n, h, w = sim.shape
        q = sim.permute(1, 0, 2, 3).reshape(n, -1).float()
        q = torch.exp((q - q.max()) / self.teacher_temperature)
        q = q / q.sum()
        pixels = q.shape[1]
        for _ in range(self.sinkhorn_iters):
            q = q / (q.sum(dim=1, keepdim=True) * n)    # each query: 1/N
            q = q / (q.sum(dim=0, keepdim=True) * pixels)  # each pixel: 1/BHW
        q = q * pixels
        return q.reshape(n, b, h, w).permute(1, 0, 2, 3).to(sim.dtype)

    @staticmethod
    @torch.no_grad()
    def assignment_stats(probs: torch.Tensor) -> Dict[str, torch.Tensor]:
        """How the pixels are assigned to the N queries, (B, N, H, W) -> dict.

        ``mrd_entropy_pixel``: mean entropy of a pixel's assignment (ln N =
        uniform, 0 = one query); ``mrd_entropy_batch``: entropy of the
        batch's mean assignment (ln N = all queries used equally);
        ``mrd_queries_used``: queries that are the argmax of at least 1 % of
        the batch's pixels.
        """
        p = probs.float().clamp_min(1e-12)
        n = p.shape[1]
        pixel = -(p * p.log()).sum(1).mean()
        marginal = probs.float().mean(dim=(0, 2, 3))
        batch = -(marginal * marginal.clamp_min(1e-12).log()).sum()
        hits = F.one_hot(probs.argmax(1).flatten(), n).float().mean(0)
        return dict(mrd_entropy_pixel=pixel, mrd_entropy_batch=batch,
                    mrd_queries_used=(hits >= 0.01).sum().float())

    @staticmethod
    def loss_align(logits_online: torch.Tensor,
                   probs_target: torch.Tensor) -> torch.Tensor:
        """One direction of Eq. 9-10: per-pixel CE(P_xi, P_theta), mean over pixels.

        Args:
            logits_online: S_theta / temperature, (B, N, H, W).
            probs_target: P_xi on the online's pixel grid (flipped back),
                (B, N, H, W); treated as a constant (the target's role).
        """
        log_p = F.log_softmax(logits_online, dim=1)
        ce = -(probs_target.detach() * log_p).sum(1)            # Eq. 9
        return ce.flatten(1).mean(1).mean()                     # 1/HW sum_uv

    def loss_consistency(self, z_online: torch.Tensor,
                         z_target: torch.Tensor) -> torch.Tensor:
        """One direction of Eq. 13 as a loss, averaged over the N queries
        (over the batch's mean embeddings with ``batch_mean_embeddings``)."""
        if self.batch_mean_embeddings and z_online.dim() == 3:
            # FRA: one prototype per query over the batch, (1, N, D).
            z_online = z_online.mean(dim=0, keepdim=True)
            z_target = z_target.mean(dim=0, keepdim=True)
        d = z_online.shape[-1]
        return self.predictor.loss(z_online.reshape(-1, d),
                                   z_target.reshape(-1, d))
