"""A time-conditioned image classifier p(y | x_t, t) for classifier guidance.

Dhariwal & Nichol, "Diffusion Models Beat GANs on Image Synthesis" (NeurIPS 2021), Sec. 4;
official code github:openai/guided-diffusion (`EncoderUNetModel`, the downsampling half of
the diffusion UNet with its time embedding, then a pooled linear head).

Here: the DDPM ResNet blocks of `layers` (time embedding added in each block), a stride-2
downsampling after every level but the last, GroupNorm + swish, global average pooling and
a Dense layer to the K logits. Deviations from the official classifier: no attention blocks
and plain average pooling instead of its attention pooling ("attention" pool, the default of
scripts/classifier_train.py), no scale-shift norm. For vector data (2-D toy distributions)
use the "mlp" network with out_channels = K.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_jax.nets import layers


class NoisyClassifier(nn.Module):
  """logits [B, K] of images x_t [B, H, W, C] at noise level t [B].

  Attributes:
    num_classes: K.
    ch: base channel count; level i has ch * ch_mult[i] channels.
    ch_mult: channel multipliers, one per resolution level.
    num_res_blocks: ResNet blocks per level.
    dropout: dropout rate inside the ResNet blocks (train=True only).
    num_groups: maximal GroupNorm group count.
    dtype: computation dtype; the logits are float32.
  """

  num_classes: int = 10
  ch: int = 64
  ch_mult: Sequence[int] = (1, 2, 2)
  num_res_blocks: int = 2
  dropout: float = 0.0
  num_groups: int = 32
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array, y: jax.Array | None = None, *,
               train: bool = False) -> jax.Array:
    """x [B, H, W, C], t [B] float (what the diffusion net sees of t); y must be None."""
    if x.ndim != 4:
      raise ValueError(f"NoisyClassifier takes images [B, H, W, C], got shape {x.shape}; "
                       "use the 'mlp' network (out_channels = K) for vectors.")
    if y is not None:
      raise ValueError("NoisyClassifier predicts the label; it takes no labels y.")
    emb = layers.timestep_embedding(jnp.asarray(t, jnp.float32), self.ch)
    emb = nn.Dense(4 * self.ch, kernel_init=layers.default_init)(emb)
    emb = nn.Dense(4 * self.ch, kernel_init=layers.default_init)(jax.nn.swish(emb))
    h = nn.Conv(self.ch, (3, 3), dtype=self.dtype, kernel_init=layers.default_init)(
        x.astype(self.dtype))
    for level, mult in enumerate(self.ch_mult):
      for _ in range(self.num_res_blocks):
        h = layers.ResnetBlock(out_channels=self.ch * mult, dropout=self.dropout,
                               num_groups=self.num_groups, dtype=self.dtype)(h, emb, train=train)
      if level != len(self.ch_mult) - 1:
        h = layers.Downsample(True, dtype=self.dtype)(h)
    h = layers.group_norm(h.shape[-1], self.num_groups, dtype=self.dtype, name="norm_out",
                          owner="NoisyClassifier")(h)
    h = jnp.mean(jax.nn.swish(h), axis=(1, 2))
    return nn.Dense(self.num_classes, dtype=self.dtype)(h).astype(jnp.float32)
