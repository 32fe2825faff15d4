"""Progressive distillation of the 8-Gaussians DDPM (configs/ddpm/toy_eight_gaussians.py)
from 128 DDIM steps to 4, in 5 halvings (minutes on a CPU).

The teacher's chain must be divisible by the teacher's steps: train it with T = 1024 and,
as the paper recommends for few-step students, v-prediction:

    python -m gen_jax.main --config=configs/ddpm/toy_eight_gaussians.py --workdir=runs/8g \\
      --config.method.num_timesteps=1024 --config.method.prediction=v
    python -m gen_jax.main --config=configs/distillation/toy_eight_gaussians.py \\
      --workdir=runs/8g_distilled --config.method.teacher_workdir=runs/8g
"""

from configs import common
from configs.ddpm import toy_eight_gaussians
from configs.distillation import _distillation


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  teacher = toy_eight_gaussians.get_config("smoke" if args.smoke else None)
  c = _distillation.distillation_config(teacher, teacher_steps=128, student_steps=4,
                                        steps_per_phase=1000)
  c.batch_size = 512
  c.optim.learning_rate = 1e-3
  c.sample.num_samples = 4096
  c.sample.batch_size = 4096
  c.sample.grid_size = 2048
  c.trainer.log_every_steps = 250
  c.trainer.checkpoint_every_steps = 1000
  c.trainer.sample_every_steps = 1000
  c.trainer.eval_every_steps = 1000
  if args.smoke:
    _distillation.smoke_distillation(c)
  c.lock()
  return c
