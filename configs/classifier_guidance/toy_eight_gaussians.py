"""A noise-conditional classifier of the 8-Gaussians mixture's components, for guiding
configs/ddpm/toy_eight_gaussians.py (seconds on a CPU):

    python -m gen_jax.main --config=configs/classifier_guidance/toy_eight_gaussians.py \\
      --workdir=runs/cg_8g
    python -m gen_jax.main --config=configs/ddpm/toy_eight_gaussians.py --workdir=runs/ddpm_8g \\
      --mode=sample --config.sample.classifier_guidance.workdir=runs/cg_8g \\
      --config.sample.classifier_guidance.scale=1.0
"""

import ml_collections

from configs import common
from configs.classifier_guidance import _classifier_guidance
from configs.ddpm import toy_eight_gaussians


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  diffusion = toy_eight_gaussians.get_config("smoke" if args.smoke else None)
  c = _classifier_guidance.noisy_classifier_config(diffusion, ml_collections.ConfigDict(dict(
      name="mlp", features=(128, 128), time_embedding_dim=32, dropout=0.0)))
  c.batch_size = 512
  c.num_train_steps = 2000
  c.optim.learning_rate = 1e-3
  c.optim.schedule = "cosine"
  c.ema.decay = 0.999
  c.trainer.log_every_steps = 250
  c.trainer.checkpoint_every_steps = 1000
  c.trainer.sample_every_steps = 2000
  c.trainer.eval_every_steps = 1000
  if args.smoke:
    _classifier_guidance.smoke_noisy_classifier(c)
    c.model.features = (16,)
    c.model.time_embedding_dim = 8
  c.lock()
  return c
