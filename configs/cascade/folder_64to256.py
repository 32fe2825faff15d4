"""A two-stage cascade on an image folder: a 64x64 base DDPM and a 64 -> 256 SR stage.

As CDM's last stage (Ho et al. 2022), 4x super-resolution to 256x256 conditioned on the
upsampled 64x64 image with Gaussian conditioning augmentation (here U[0, 0.5] in training,
0.1 when sampling). The folder: see folder_16to64.py (images resized to 256x256; the base
stage's 64x64 images are their 4x4 block means). Base: UNet ch 128 x (1, 2, 3, 4),
attention at 16 and 8; SR: UNet ch 64 x (1, 1, 2, 2, 4, 4), no attention (CDM's 256 px
stage is wider, ch 128 x (1, 2, 4, 4, 8, 8)). Both sample with 100 DDIM steps.

`:smoke` runs on the built-in digits resized to 32x32 (an 8 -> 32 cascade of tiny UNets).
"""

from configs.cascade import _cascade

DATA = dict(source="folder", path="", eval_path="", image_size=256, random_flip=True)
SMOKE_DATA = dict(source="digits", image_size=32)


def get_config(arg=None):
  return _cascade.get(
      arg, data=DATA, factor=4, smoke_data=SMOKE_DATA,
      base_model=_cascade.unet(ch=128, ch_mult=(1, 2, 3, 4), attn_resolutions=(16, 8),
                               dropout=0.1),
      sr_model=_cascade.unet(ch=64, ch_mult=(1, 1, 2, 2, 4, 4)))
