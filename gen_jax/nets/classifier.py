"""The small image classifier whose penultimate layer is the offline feature space
(`gen_jax.methods.classifier`, `gen_jax.eval.features`); registered as "classifier_cnn"."""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp


class ClassifierCNN(nn.Module):
  """Conv stages (3x3 conv, 3x3 stride-2 conv, ReLU each) -> flatten -> MLP.

  Stage i has ch * ch_mult[i] channels (the UNet's naming). Returns (features [B, hidden],
  logits [B, num_classes]), both float32; `features`, the penultimate layer, is the feature
  space. `dtype` is the computation dtype (parameters float32).
  """

  num_classes: int
  ch: int = 32
  ch_mult: Sequence[int] = (1, 2)
  hidden: int = 128
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = x.astype(self.dtype)
    for i, f in enumerate(self.ch * m for m in self.ch_mult):
      x = nn.relu(nn.Conv(f, (3, 3), dtype=self.dtype, name=f"conv{i}_a")(x))
      x = nn.relu(nn.Conv(f, (3, 3), strides=(2, 2), dtype=self.dtype, name=f"conv{i}_b")(x))
    x = x.reshape(x.shape[0], -1)
    feats = nn.relu(nn.Dense(self.hidden, dtype=self.dtype, name="hidden")(x))
    logits = nn.Dense(self.num_classes, dtype=self.dtype, name="logits")(feats)
    return feats.astype(jnp.float32), logits.astype(jnp.float32)
