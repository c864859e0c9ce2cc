"""Reference PyTorch MixSynthFormer, state-dict compatible with the official checkpoints.

Used for parity tests, checkpoint conversion and training; never imported by the package.
Shapes: K = sample_interval, Q = step, T = K*Q + 1 frames, P = joint_dim, C = emb_dim.
"""
import math

import torch
from torch import nn


class SELayer(nn.Module):
    """Squeeze-excitation over the N rows of (B, N, d); bias-free as in the official code."""

    def __init__(self, n):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(n, n // 4, bias=False), nn.ReLU(),
                                nn.Linear(n // 4, n, bias=False), nn.Sigmoid())

    def forward(self, e):
        return e * self.fc(e.mean(-1)).unsqueeze(-1)


class SynthAttention(nn.Module):
    """Dense synthesizer mapping (B, N, D) -> (B, N, D) with d = N // r synthesized keys."""

    def __init__(self, in_dim, out_dim, reduce):
        super().__init__()
        n, self.d = out_dim, out_dim // reduce
        self.dense = nn.Linear(in_dim, self.d)
        self.se = SELayer(n)
        # Always created (checkpoints contain it) but only used when it actually reduces.
        self.value_reduce = nn.Linear(n, self.d)
        self.n = n

    def forward(self, s):
        attn = torch.softmax(self.se(self.dense(s)), dim=-1)  # (B, N, d)
        v = self.value_reduce(s.transpose(-1, -2)).transpose(-1, -2) if self.d < self.n else s
        return attn @ v


class Mlp(nn.Module):
    def __init__(self, in_dim, hidden, out_dim, dropout=0.0):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class MixSynth(nn.Module):
    """Token- and channel-synthesizer branches mixed by per-frame softmax weights: (B, T, C) -> (B, T, C)."""

    def __init__(self, t, c, reduce_token, reduce_channel, dropout=0.0):
        super().__init__()
        self.synth_token = SynthAttention(c, t, reduce_token)
        self.synth_channel = SynthAttention(t, c, reduce_channel)
        self.reweight = Mlp(t, t // 4, 2 * t)
        self.proj = nn.Linear(c, c)
        self.drop = nn.Dropout(dropout)

    def forward(self, z):
        b, t, _ = z.shape
        yt = self.synth_token(z)
        yc = self.synth_channel(z.transpose(1, 2)).transpose(1, 2)
        # Interleaved layout: frame t's two mixing logits are m[2t], m[2t+1].
        a = torch.softmax(self.reweight((yt + yc).mean(-1)).reshape(b, t, 2), dim=-1)
        return self.drop(self.proj(a[..., :1] * yt + a[..., 1:] * yc))


class EncoderLayer(nn.Module):
    """Post-norm block: Z = norm1(Z + mix(Z)); Z = norm2(Z + ff(Z))."""

    def __init__(self, t, c, expansion_factor, dropout, reduce_token, reduce_channel):
        super().__init__()
        self.synth_att = MixSynth(t, c, reduce_token, reduce_channel, dropout)
        self.ff = Mlp(c, c * expansion_factor, c, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(c), nn.LayerNorm(c)

    def forward(self, z):
        z = self.norm1(z + self.synth_att(z))
        return self.norm2(z + self.ff(z))


class Encoder(nn.Module):
    def __init__(self, num_layers, *args):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(*args) for _ in range(num_layers))

    def forward(self, z):
        for layer in self.layers:
            z = layer(z)
        return z


class PoseRefinementModel(nn.Module):
    """Keyframes (B, Q+1, P) -> refined full-rate window (B, T, P)."""

    def __init__(self, sample_interval, step, joint_dim, emb_dim, num_encoder_layers,
                 expansion_factor=2, dropout=0.0, reduce_token=4, reduce_channel=1):
        super().__init__()
        self.k = sample_interval
        t = sample_interval * step + 1
        self.l_interp = nn.Linear(step + 1, t)
        self.encoder_emb = nn.Linear(joint_dim, emb_dim)
        self.encoder = Encoder(num_encoder_layers, t, emb_dim, expansion_factor, dropout,
                               reduce_token, reduce_channel)
        self.norm = nn.LayerNorm(emb_dim)
        self.fc = nn.Linear(emb_dim, joint_dim)

    def forward_keyframes(self, kf):
        """kf: (B, Q+1, P) -> (B, T, P)."""
        x = self.l_interp(kf.transpose(1, 2)).transpose(1, 2)  # learned temporal upsampling
        z = self.encoder(self.encoder_emb(x))
        return self.fc(self.norm(z)) + x

    def forward(self, x):
        """x: (B, T, P) noisy window; only every K-th frame is read."""
        return self.forward_keyframes(x[:, ::self.k])


def random_model(K, Q, P, C, L, reduce_token=4, reduce_channel=1, seed=0, dtype=torch.float64):
    """Model in eval mode with every parameter (incl. LN affine, biases) randomised at sane scale."""
    model = PoseRefinementModel(K, Q, P, C, L, reduce_token=reduce_token, reduce_channel=reduce_channel)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / math.sqrt(m.in_features))
            elif isinstance(m, nn.LayerNorm):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
            if isinstance(m, (nn.Linear, nn.LayerNorm)) and m.bias is not None:
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
    return model.to(dtype).eval()
