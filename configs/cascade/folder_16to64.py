"""A two-stage cascade on an image folder: a 16x16 base DDPM and a 16 -> 64 SR stage.

The folder (`--config.cascade.stages.base.data.path=<root>` and the same for `sr`, or
`--config.data.path=<root>` with `stage=base` / `stage=sr`) holds <root>/<class>/<images>;
images are center-cropped and resized to 64x64 (PIL bilinear), the base stage's 16x16
images are their 4x4 block means ("area"). Base: UNet ch 128 x (1, 2, 2), attention at
8x8; SR (CDM noise augmentation U[0, 0.5], sampled at 0.1): UNet ch 64 x (1, 2, 4, 4). Both
sample with 100 DDIM steps. Commands as in cifar10_8to32.py.

`:smoke` runs on the built-in digits resized to 32x32 (an 8 -> 32 cascade of tiny UNets;
no folder is needed).
"""

from configs.cascade import _cascade

DATA = dict(source="folder", path="", eval_path="", image_size=64, random_flip=True)
SMOKE_DATA = dict(source="digits", image_size=32)


def get_config(arg=None):
  return _cascade.get(
      arg, data=DATA, factor=4, smoke_data=SMOKE_DATA,
      base_model=_cascade.unet(ch=128, ch_mult=(1, 2, 2), attn_resolutions=(8,), dropout=0.1),
      sr_model=_cascade.unet(ch=64, ch_mult=(1, 2, 4, 4)))
