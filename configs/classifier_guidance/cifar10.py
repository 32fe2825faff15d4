"""A noise-conditional CIFAR-10 classifier for guiding configs/improved_ddpm/cifar10.py.

Dhariwal & Nichol 2021, Sec. 4 and github:openai/guided-diffusion scripts/classifier_train.py
(their classifiers are for ImageNet; the settings follow those: 2 ResNet blocks per level,
AdamW lr 3e-4 with weight decay 0.05, batch 256 there, 128 here). Trained on x_t of the
improved-DDPM process (cosine chain, T = 4000), then sample the diffusion model with it:

    python -m gen_jax.main --config=configs/classifier_guidance/cifar10.py --workdir=runs/cg_c10
    python -m gen_jax.main --config=configs/improved_ddpm/cifar10.py --workdir=runs/iddpm_c10 \\
      --mode=sample --config.sample.classifier_guidance.workdir=runs/cg_c10 \\
      --config.sample.classifier_guidance.scale=1.0
"""

import ml_collections

from configs import common
from configs.classifier_guidance import _classifier_guidance
from configs.improved_ddpm import cifar10 as improved_ddpm_cifar10


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  diffusion = improved_ddpm_cifar10.get_config("smoke" if args.smoke else None)
  c = _classifier_guidance.noisy_classifier_config(diffusion, ml_collections.ConfigDict(dict(
      name="noisy_classifier", ch=128, ch_mult=(1, 2, 2), num_res_blocks=2, dropout=0.0,
      num_groups=32)))
  c.batch_size = 128
  c.num_train_steps = 300_000
  c.optim.name = "adamw"
  c.optim.learning_rate = 3e-4
  c.optim.weight_decay = 0.05
  c.ema.decay = 0.9999
  if args.smoke:
    _classifier_guidance.smoke_noisy_classifier(c)
    c.model.ch, c.model.ch_mult, c.model.num_res_blocks, c.model.num_groups = 16, (1, 2), 1, 8
  c.lock()
  return c
