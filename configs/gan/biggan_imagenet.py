"""BigGAN on ImageNet at 128x128 (default) or 64x64 (`:res=64`), class-conditional.

The paper's settings (Brock et al., ICLR 2019, Sec. 3-4 and Appendix C; the full model
of its Table 1, row 8: FID 8.51 / IS 99.31 without truncation): G and D at ch 96
(70.4M + 88.0M parameters at 128 px), self-attention at 64x64 in both, shared class
embedding of 128 with hierarchical latents (z 120 = 6 chunks of 20), spectral norm in G
and D, orthogonal initialisation, hinge loss, Adam with betas (0, 0.999), learning rates
5e-5 (G) and 2e-4 (D), two D steps per G step, batch 2048 (the global batch holds
2 x 2048 images), orthogonal regularisation beta = 1e-4, G EMA with decay 0.9999 from
step 20k (the official scripts' ema_start), standing statistics for the EMA generator,
and sample.truncation for the truncation trick. 165k generator steps: the iteration
count Table 1 reports for that model (training there stopped when it collapsed).

Data: tfds `imagenet2012` (labelled; 128 px: centre crop of the long edge and resize,
as the official loader) and tfds `imagenet_resized/64x64` for 64 px (the labelled
box-resized ImageNet; `downsampled_imagenet/64x64` has no labels, which a conditional
BigGAN needs). Neither can be downloaded automatically (imagenet2012 needs the
ILSVRC2012 tar files in tfds's manual_dir): a missing dataset stops at start-up with
DatasetNotPreparedError, saying how to prepare it; or point data.source='folder' at a
folder of class subfolders.

Deviations: the official launch scripts (launch_BigGAN_bs256x8.sh) use one D step per G
step with learning rates 1e-4 / 4e-4, G_ortho 0.0, SN_eps 1e-6 and adam_eps 1e-6 (the
eps here: 1e-6 as there; the rest follows the paper); they reach batch 2048 by 8 gradient
accumulations. 64 px is not in the paper: it uses the official code's 64x64 tables
(G 16-8-4-2, D 1-2-4-8-16 x ch) with attention at 32x32, the same relative place as
128 px's 64x64 (after G's next-to-last block and D's first), and the 128 px settings.
Standing statistics: 16 batches of 256 (the official default num_standing_accumulations;
the paper mentions ~100 passes).

    python -m gen_jax.main --config=configs/gan/biggan_imagenet.py --workdir=runs/biggan_in128
    python -m gen_jax.main --config=configs/gan/biggan_imagenet.py:res=64 --workdir=runs/bg64
"""

from configs import common
from configs.gan import _gan

DATASETS = {128: "imagenet2012", 64: "imagenet_resized/64x64"}


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, res=128)
  if args.res not in DATASETS:
    raise ValueError(f"BigGAN ImageNet resolution must be one of {sorted(DATASETS)}, "
                     f"got res={args.res}.")
  attention = (args.res // 2,)
  c = _gan.gan_config(
      generator=dict(name="biggan_generator", ch=96, attention=attention, shared_dim=128,
                     hierarchical=True, spectral_norm=True, weight_init="ortho"),
      discriminator=dict(name="biggan_discriminator", ch=96, attention=attention,
                         spectral_norm=True, weight_init="ortho"),
      lr_g=5e-5, lr_d=2e-4, b1=0.0, b2=0.999, loss="hinge", n_dis=2, z_dim=120)
  c.data.source = "tfds"
  c.data.name = DATASETS[args.res]
  c.data.split = "train"
  c.data.eval_split = "validation"
  c.data.image_size = args.res
  c.data.random_flip = False
  c.method.class_conditional = True
  c.method.ortho_weight = 1e-4
  c.method.standing_stats = 16
  c.method.standing_batch_size = 256
  c.batch_size = 2 * 2048
  c.num_train_steps = 165_000
  c.optim.eps = 1e-6
  c.ema.decay = 0.9999
  c.ema.start = 20_000
  c.sample.num_samples = 50_000
  c.sample.batch_size = 256
  c.sample.grid_size = 64
  c.trainer.log_every_steps = 100
  c.trainer.checkpoint_every_steps = 2000
  c.trainer.sample_every_steps = 2000
  c.trainer.eval_every_steps = 2000
  c.eval.max_batches = 10
  c.eval.num_samples = 50_000
  if args.smoke:
    _gan.smoke_gan(c)
    c.method.n_dis = 1  # the smallest graph: XLA:CPU compiles BigGAN's step slowly
    c.batch_size = 8
    c.model.generator.ch = 8
    c.data.image_size = 32
    c.model.generator.attention = (16,)
    c.model.discriminator.attention = (16,)
    c.method.standing_stats = 2
    c.method.standing_batch_size = 4
    c.ema.start = 2
  c.lock()
  return c
