"""NCSN++ and DDPM++: the score networks of Song et al., "Score-Based Generative Modeling
through Stochastic Differential Equations" (ICLR 2021, arXiv:2011.13456), section 4.4 and
appendix H; a port of `models/ncsnpp.py` (with `layerspp.py`) of yang-song/score_sde.

One module, `NCSNpp`, covers both (as in the paper's code): a UNet built from the shared
blocks of `gen_jax.nets.layers` (the DDPM ResNet block with its BigGAN up/down option, the
attention block, skip rescaling by 1/sqrt(2), GroupNorm with min(C // 4, 32) groups) with

* the noise conditioning embedded by Gaussian Fourier features of log(cond) (NCSN++, VE:
  `embedding_type="fourier"`, cond = sigma) or sinusoidally (DDPM++, VP: "positional",
  cond = 999 t or the discrete step);
* BigGAN-style resampling ResNet blocks between resolutions (`resblock_type="biggan"`) or
  DDPM resamplers ("ddpm"), with optional FIR filtering (kernel [1, 3, 3, 1]);
* attention after every down-path ResNet block at `attn_resolutions`, in the middle, and
  once per up-path level (after the level's last block);
* optional progressive growing of the input (`progressive_input`: "input_skip" adds a 1x1
  conv of the downsampled image, a plain sum; "residual" adds a strided-conv pyramid) and of
  the output (`progressive`: "output_skip" sums per-level predictions; "residual").

The reference's CIFAR-10 networks (configs/{ve,vp,subvp}/cifar10_*_continuous.py): ch 128,
ch_mult (1, 2, 2, 2), 4 ResNet blocks per level (8 for "deep"), attention at 16x16, BigGAN
blocks, skip_rescale. NCSN++ adds the Fourier embedding (scale 16), FIR and
progressive_input="residual" (progressive "none"; the high-resolution configs use
"output_skip" + "input_skip"): 62,758,915 parameters, 107,587,075 deep. DDPM++ uses the
positional embedding without FIR or pyramids: 61,804,419, 106,632,579 deep. gen_jax builds
exactly these parameter counts and, on the same weights, the reference's outputs
(tests/nets/test_ncsnpp_reference.py).

Deviations from the reference code (none changes the function class):
* The network does not know about SDEs: no `x -> 2x - 1` for uncentred data (gen_jax feeds
  centred images) and no division by sigma (`scale_by_sigma`); the method passes the
  conditioning and rescales the output (1/sigma for VE, -1/std for VP), see
  `gen_jax.methods.diffusion`.
* The last layer of each residual branch and the output convolution start at exact zeros
  (the reference: variance scale 1e-10).
* 1x1 convolutions replace the reference's NIN layers (kernel [1, 1, in, out] for
  [in, out]; same maths) and Dense layers the attention's NIN q, k, v, out.
* The sinusoidal embedding computes its frequencies as exp(-log(1e4) i / (h - 1)) (the
  reference: exp(i * -(log(1e4) / (h - 1)))); float32 rounding differs by <= 1e-4 for t < 1000.
* Extras: class conditioning (`num_classes`), `num_heads` > 1, a computation `dtype`. Fixed
  (options in the reference): the swish nonlinearity, the [1, 3, 3, 1] FIR kernel, a
  conditional network.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_jax.nets import layers

Dtype = Any

EMBEDDINGS = ("fourier", "positional")
RESBLOCKS = ("biggan", "ddpm")
PROGRESSIVE = ("none", "output_skip", "residual")
PROGRESSIVE_INPUT = ("none", "input_skip", "residual")
COMBINES = ("sum", "cat")


class NCSNpp(nn.Module):
  """NCSN++ / DDPM++ (defaults: the reference's CIFAR-10 NCSN++).

  Attributes:
    ch: base channel count (the paper's nf); level i has ch * ch_mult[i] channels.
    ch_mult: channel multipliers per resolution level.
    num_res_blocks: ResNet blocks per level (the "deep" models use 8).
    attn_resolutions: spatial sizes with self-attention: after each ResNet block of the down
      path, and once per level (after its last block) on the up path.
    dropout: dropout rate in the ResNet blocks.
    embedding_type: "fourier" (input: a positive noise level, embedded as log) or
      "positional" (input: a time step, embedded as is).
    fourier_scale: std of the Fourier frequencies.
    resblock_type: "biggan" (resampling ResNet blocks) or "ddpm" (separate resamplers).
    resamp_with_conv: the "ddpm" resamplers convolve (3x3) as they resample.
    fir: FIR-filtered resampling (kernel [1, 3, 3, 1]).
    skip_rescale: divide residual sums by sqrt(2).
    progressive: output pyramid: "none", "output_skip" (every level predicts the output,
      upsampled and summed) or "residual" (a 3x3-conv pyramid added to the features).
    progressive_input: input pyramid: "none", "input_skip" (the image, downsampled, is
      combined through a 1x1 conv) or "residual" (a strided-conv pyramid added to the
      features, / sqrt(2) with skip_rescale).
    progressive_combine: how "input_skip" combines: "sum" (plain sum, no rescaling) or
      "cat" (concatenation, doubling the channels).
    num_classes: > 0 for class conditioning (label num_classes is the null label).
    out_channels: None keeps the input channel count.
    num_groups: maximal GroupNorm group count.
    min_group_size: GroupNorm groups are min(num_groups, C // min_group_size); the
      reference's min(C // 4, 32) is (32, 4).
    num_heads: attention heads.
    dtype: computation dtype (output float32).
    remat: recompute each ResNet and attention block's activations in the backward pass
      (less memory, more compute); same parameters.
  """
  ch: int = 128
  ch_mult: Sequence[int] = (1, 2, 2, 2)
  num_res_blocks: int = 4
  attn_resolutions: Sequence[int] = (16,)
  dropout: float = 0.1
  embedding_type: str = "fourier"
  fourier_scale: float = 16.0
  resblock_type: str = "biggan"
  resamp_with_conv: bool = True
  fir: bool = True
  skip_rescale: bool = True
  progressive: str = "none"
  progressive_input: str = "residual"
  progressive_combine: str = "sum"
  num_classes: int = 0
  out_channels: int | None = None
  num_groups: int = 32
  min_group_size: int = 4
  num_heads: int = 1
  dtype: Dtype = jnp.float32
  remat: bool = False

  def _check(self, x, t, y):
    for value, name, choices in ((self.embedding_type, "embedding_type", EMBEDDINGS),
                                 (self.resblock_type, "resblock_type", RESBLOCKS),
                                 (self.progressive, "progressive", PROGRESSIVE),
                                 (self.progressive_input, "progressive_input", PROGRESSIVE_INPUT),
                                 (self.progressive_combine, "progressive_combine", COMBINES)):
      if value not in choices:
        raise ValueError(f"NCSNpp: {name}={value!r}; choose one of: {', '.join(choices)}.")
    if x.ndim != 4:
      raise ValueError(f"NCSNpp expects images [B, H, W, C], got shape {x.shape}.")
    factor = 2 ** (len(self.ch_mult) - 1)
    if x.shape[1] % factor or x.shape[2] % factor:
      raise ValueError(f"NCSNpp with ch_mult={tuple(self.ch_mult)} needs H and W divisible by "
                       f"{factor}, got {x.shape[1:3]}.")
    if t.shape != (x.shape[0],):
      raise ValueError(f"NCSNpp expects the conditioning t of shape [B]=({x.shape[0]},), got "
                       f"{t.shape}.")
    if self.num_classes > 0 and (y is None or y.shape != (x.shape[0],)):
      raise ValueError(f"NCSNpp has num_classes={self.num_classes} and needs int labels y [B]"
                       f" (label {self.num_classes} = unconditional).")
    if self.num_classes == 0 and y is not None:
      raise ValueError("NCSNpp got labels y but num_classes=0; set num_classes or drop y.")

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array, y: jax.Array | None = None, *,
               train: bool) -> jax.Array:
    """Network output for images x at noise conditioning t.

    Args:
      x: [B, H, W, C] float images (centred, e.g. in [-1, 1]).
      t: [B] conditioning: a noise level sigma > 0 ("fourier") or a time step ("positional").
      y: [B] int labels when num_classes > 0.
      train: enables dropout.

    Returns:
      [B, H, W, out_channels or C] float32.
    """
    t = jnp.asarray(t)
    self._check(x, t, y)
    out_ch = self.out_channels or x.shape[-1]
    num_levels = len(self.ch_mult)
    emb_dim = 4 * self.ch
    dense = lambda feats, name: nn.Dense(feats, dtype=self.dtype, kernel_init=layers.default_init,
                                         name=name)
    conv = lambda feats, k, name, init=layers.default_init: nn.Conv(
        feats, (k, k), dtype=self.dtype, kernel_init=init, name=name)

    if self.embedding_type == "fourier":
      emb = layers.GaussianFourierProjection(self.ch, self.fourier_scale, name="fourier")(
          jnp.log(t))
    else:
      emb = layers.timestep_embedding(t, self.ch)
    emb = dense(emb_dim, "time_dense_0")(emb)
    emb = dense(emb_dim, "time_dense_1")(jax.nn.swish(emb))
    if self.num_classes > 0:
      emb = emb + nn.Embed(self.num_classes + 1, emb_dim, name="label_emb")(y)

    def resnet(ch, name, resample="none"):
      # score_sde's DDPM++ block has a NIN shortcut (init scale 0.1), its BigGAN block a 1x1
      # conv (scale 1).
      skip_scale = 0.1 if self.resblock_type == "ddpm" else 1.0
      return layers.ResnetBlock(out_channels=ch, dropout=self.dropout, num_groups=self.num_groups,
                                skip_rescale=self.skip_rescale, resample=resample, fir=self.fir,
                                dtype=self.dtype, min_group_size=self.min_group_size,
                                skip_init_scale=skip_scale, name=name)

    def attention(name):
      return layers.AttentionBlock(num_heads=self.num_heads, num_groups=self.num_groups,
                                   skip_rescale=self.skip_rescale, dtype=self.dtype,
                                   min_group_size=self.min_group_size, qkv_init_scale=0.1,
                                   name=name)

    run_resnet = layers.maybe_remat(
        lambda mdl, h, emb, ch, name, resample: resnet(ch, name, resample)(h, emb, train=train),
        self.remat, (3, 4, 5))
    run_attention = layers.maybe_remat(lambda mdl, h, name: attention(name)(h), self.remat,
                                       (2,))

    def norm_act(h, name):
      h = layers.group_norm(h.shape[-1], self.num_groups, dtype=self.dtype, name=name,
                            owner="NCSNpp", min_group_size=self.min_group_size)(h)
      return jax.nn.swish(h)

    def resample_conv(h, ch, direction, name):
      return layers.ResampleConv(ch, direction, fir=self.fir, dtype=self.dtype, name=name)(h)

    def downsample(h, name):
      """The "ddpm" block type's resampler between levels."""
      if self.resamp_with_conv:
        return resample_conv(h, h.shape[-1], "down", name)
      return layers.downsample_2d(h, self.fir)

    def upsample(h, name):
      if self.resamp_with_conv:
        return resample_conv(h, h.shape[-1], "up", name)
      return layers.upsample_2d(h, self.fir)

    x = x.astype(self.dtype)
    input_pyramid = x
    h = conv(self.ch, 3, "conv_in")(x)
    hs = [h]
    for level in range(num_levels):
      for block in range(self.num_res_blocks):
        h = run_resnet(self, hs[-1], emb, self.ch * self.ch_mult[level],
                       f"down_{level}_block_{block}", "none")
        if h.shape[1] in self.attn_resolutions:
          h = run_attention(self, h, f"down_{level}_attn_{block}")
        hs.append(h)
      if level != num_levels - 1:
        if self.resblock_type == "biggan":
          h = run_resnet(self, hs[-1], emb, h.shape[-1], f"down_{level}_resample", "down")
        else:
          h = downsample(hs[-1], f"down_{level}_resample")
        if self.progressive_input == "input_skip":
          input_pyramid = layers.downsample_2d(input_pyramid, self.fir)
          skip = conv(h.shape[-1], 1, f"down_{level}_input_skip")(input_pyramid)
          h = skip + h if self.progressive_combine == "sum" else jnp.concatenate(
              [skip, h], axis=-1)
        elif self.progressive_input == "residual":
          input_pyramid = resample_conv(input_pyramid, h.shape[-1], "down",
                                        f"down_{level}_input_residual")
          input_pyramid = self._residual_sum(input_pyramid, h)
          h = input_pyramid
        hs.append(h)

    h = hs[-1]
    h = run_resnet(self, h, emb, h.shape[-1], "mid_block_1", "none")
    h = run_attention(self, h, "mid_attn")
    h = run_resnet(self, h, emb, h.shape[-1], "mid_block_2", "none")

    pyramid = None
    for level in reversed(range(num_levels)):
      for block in range(self.num_res_blocks + 1):
        h = jnp.concatenate([h, hs.pop()], axis=-1)
        h = run_resnet(self, h, emb, self.ch * self.ch_mult[level], f"up_{level}_block_{block}",
                       "none")
      if h.shape[1] in self.attn_resolutions:
        h = run_attention(self, h, f"up_{level}_attn")
      if self.progressive == "output_skip":
        out = conv(out_ch, 3, f"up_{level}_out_conv", layers.zero_init)(
            norm_act(h, f"up_{level}_out_norm"))
        pyramid = out if pyramid is None else layers.upsample_2d(pyramid, self.fir) + out
      elif self.progressive == "residual":
        if pyramid is None:
          pyramid = conv(h.shape[-1], 3, f"up_{level}_out_conv")(
              norm_act(h, f"up_{level}_out_norm"))
        else:
          pyramid = resample_conv(pyramid, h.shape[-1], "up", f"up_{level}_pyramid_resample")
          pyramid = self._residual_sum(pyramid, h)
          h = pyramid
      if level != 0:
        if self.resblock_type == "biggan":
          h = run_resnet(self, h, emb, h.shape[-1], f"up_{level}_resample", "up")
        else:
          h = upsample(h, f"up_{level}_resample")
    assert not hs, "every skip activation must be consumed"

    if self.progressive == "output_skip":
      h = pyramid
    else:
      h = conv(out_ch, 3, "conv_out", layers.zero_init)(norm_act(h, "norm_out"))
    return h.astype(jnp.float32)

  def _residual_sum(self, a: jax.Array, b: jax.Array) -> jax.Array:
    """a + b, divided by sqrt(2) with skip_rescale (the "residual" pyramids)."""
    return (a + b) / math.sqrt(2.0) if self.skip_rescale else a + b
