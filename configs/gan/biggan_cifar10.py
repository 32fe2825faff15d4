"""BigGAN on CIFAR-10 (Brock et al., ICLR 2019), class-conditional.

The numbers follow the official BigGAN-PyTorch CIFAR script (scripts/launch_cifar_ema.sh):
G and D at ch 64 (the 32x32 tables: three G blocks of 256 channels, four D blocks of
256), no attention, N(0, 0.02) initialisation, hinge loss, Adam 2e-4 for both with betas
(0, 0.999) and eps 1e-8, n_dis = 4 discriminator steps of 50 images per generator step
(global batch 4 x 50), 500 epochs = 125k generator steps, EMA decay 0.9999 starting at
step 1000. With the BigGAN pieces of the paper on top: shared class embedding (128) with
hierarchical latents (z 128 = 4 chunks of 32), spectral norm in G and D, orthogonal
regularisation 1e-4 (the paper's beta), and standing statistics (16 batches of 50) for
the EMA generator before sampling.

Deviations from launch_cifar_ema.sh: it leaves G_shared and hier off and G_ortho at 0.0
(set model.generator.shared_dim=0, model.generator.hierarchical=False and
method.ortho_weight=0.0 to match it), and it samples with the EMA generator's EMA-ed
running statistics (no --mybn/--accumulate_stats): set method.standing_stats=0 to use
the raw generator's running statistics instead. The paper reports IS 9.22 / FID 14.73
(its Table 5) for BigGAN on CIFAR-10.

    python -m gen_jax.main --config=configs/gan/biggan_cifar10.py --workdir=runs/biggan_c10
    python -m gen_jax.main --config=configs/gan/biggan_cifar10.py --workdir=runs/biggan_c10 \
        --mode=sample --config.sample.truncation=1.0
"""

from configs import common
from configs.gan import _cifar10, _gan


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = _gan.gan_config(
      generator=dict(name="biggan_generator", ch=64, attention=(), shared_dim=128,
                     hierarchical=True, spectral_norm=True, weight_init="N02"),
      discriminator=dict(name="biggan_discriminator", ch=64, attention=(),
                         spectral_norm=True, weight_init="N02"),
      lr_g=2e-4, lr_d=2e-4, b1=0.0, b2=0.999, loss="hinge", n_dis=4, z_dim=128)
  _cifar10.cifar10_data(c)
  c.method.class_conditional = True
  c.method.ortho_weight = 1e-4
  c.method.standing_stats = 16
  c.method.standing_batch_size = 50
  c.batch_size = 4 * 50
  c.num_train_steps = 500 * 50_000 // c.batch_size  # 500 epochs: 125k generator steps
  c.optim.eps = 1e-8
  c.ema.decay = 0.9999
  c.ema.start = 1000
  if args.smoke:
    _gan.smoke_gan(c)
    c.method.n_dis = 1  # the smallest graph: XLA:CPU compiles BigGAN's step slowly
    c.batch_size = 8
    c.model.generator.ch = 8
    c.method.standing_stats = 2
    c.method.standing_batch_size = 4
    c.ema.start = 2
  c.lock()
  return c
