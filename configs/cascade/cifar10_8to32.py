"""A two-stage cascade on CIFAR-10: an 8x8 base DDPM and an 8 -> 32 super-resolution stage.

Both stages see the same pairs: 8x8 images are the 32x32 training images averaged over 4x4
blocks ("area", gen_jax/data/pairs.py). The base is an unconditional DDPM (cosine chain of
1000 steps, eps, UNet ch 128 x (1, 2, 2), attention at 4x4); the super-resolution stage
(SR3 with CDM's noise conditioning augmentation, levels U[0, 0.5] in training, 0.1 when
sampling, bicubic upsampling) a UNet ch 64 x (1, 2, 2, 2) on 3 + 3 + 1 input channels.
Both sample with 100 DDIM steps. These sizes are ours: neither CDM nor SR3 reports CIFAR-10.

    python -m gen_jax.main --config=configs/cascade/cifar10_8to32.py:stage=base \
        --workdir=runs/c10_cascade/base
    python -m gen_jax.main --config=configs/cascade/cifar10_8to32.py:stage=sr \
        --workdir=runs/c10_cascade/sr
    python -m gen_jax.main --config=configs/cascade/cifar10_8to32.py:stage=cascade \
        --workdir=runs/c10_cascade --mode=sample     # writes samples/stage{0,1}_*.png
    python -m gen_jax.main --config=configs/cascade/cifar10_8to32.py:stage=cascade \
        --workdir=runs/c10_cascade --mode=eval --config.eval.metrics='("fid",)' ...

(`--mode=train` on the cascade config trains both stages, one after the other.) `:smoke`
(with any stage) shrinks every stage to a tiny UNet and a 20-step chain.
"""

from configs.cascade import _cascade

DATA = dict(source="tfds", name="cifar10", split="train", eval_split="test", random_flip=True)


def get_config(arg=None):
  return _cascade.get(
      arg, data=DATA, factor=4,
      base_model=_cascade.unet(ch=128, ch_mult=(1, 2, 2), attn_resolutions=(4,), dropout=0.1),
      sr_model=_cascade.unet(ch=64, ch_mult=(1, 2, 2, 2)))
