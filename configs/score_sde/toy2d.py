"""Score SDEs on 2-D toy data (data.source=toy2d) with an MLP: trains in seconds on a CPU;
tests/methods/test_score_sde.py trains the default and measures that its samples land on
the 8 modes.

    --config=configs/score_sde/toy2d.py                        8 Gaussians, VP SDE, EM sampler
    --config=configs/score_sde/toy2d.py:dist=two_moons,sde=vesde    two moons, VE SDE, PC

    python -m gen_jax.main --config=configs/score_sde/toy2d.py --workdir=runs/sde_8g
    python -m gen_jax.main --config=configs/score_sde/toy2d.py --workdir=runs/sde_8g \
        --mode=sample --config.sample.sampler=ode     # adaptive RK45 probability flow
    python -m gen_jax.main --config=configs/score_sde/toy2d.py --workdir=runs/sde_8g --mode=eval

--mode=eval reports the exact negative log-likelihood in nats (probability-flow ODE with the
exact divergence). dist: eight_gaussians | twenty_five_gaussians | two_moons | checkerboard |
gaussian; sde: vpsde | subvpsde | vesde (sigma in [0.01, 10]: the data spans ~4).
"""

import ml_collections

from configs import common
from configs.score_sde import _score_sde


def toy_config(sde: str, name: str) -> ml_collections.ConfigDict:
  """The toy settings for SDE `sde` and toy distribution `name`."""
  c = _score_sde.score_sde_config(sde=sde, model=dict(
      name="mlp", features=(256, 256, 256), time_embedding_dim=64, dropout=0.0))
  c.data.source = "toy2d"
  c.data.name = name
  c.data.dequantize = False  # continuous data: the likelihood is a density in nats
  c.method.conditioning = "time"  # the MLP embeds 999 t sinusoidally (VE too)
  c.method.eps = 1e-3
  c.method.likelihood.enabled = True
  c.method.likelihood.trace = "exact"  # D = 2: the exact divergence costs 2 JVPs
  c.batch_size = 512
  c.num_train_steps = 4000
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 100
  c.optim.schedule = "cosine"
  c.ema.decay = 0.999
  c.sample.sampler = "euler_maruyama"
  c.sample.euler_maruyama.num_steps = 500
  c.sample.num_samples = 4096
  c.sample.batch_size = 4096
  c.sample.grid_size = 2048
  c.trainer.log_every_steps = 250
  c.trainer.checkpoint_every_steps = 1000
  c.trainer.sample_every_steps = 1000
  c.trainer.eval_every_steps = 1000
  return c


def smoke_toy(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  _score_sde.smoke_score_sde(c)
  c.model.features = (32, 32)
  c.model.time_embedding_dim = 16
  return c


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False, dist="eight_gaussians", sde="vpsde")
  c = toy_config(args.sde, args.dist)
  # No reference config for 2-D data: every SDE sums over the 2 dimensions (the setting these
  # toy runs and their tests were tuned with).
  c.method.reduce_mean = False
  if args.sde == "vesde":
    c.method.sigma_min = 0.01
    c.method.sigma_max = 10.0
    c.sample.sampler = "pc"
  if args.smoke:
    smoke_toy(c)
  c.lock()
  return c
