"""Progressive distillation on CIFAR-10 (Salimans & Ho 2022, Sec. 5): 1024 DDIM steps of a
v-prediction teacher halved eight times to a 4-step student.

As in the paper: v-prediction teacher, truncated-SNR weighting, Adam with the learning
rate annealed linearly to 0 within each phase, batch 128, the student initialised from
the teacher and the teacher of each phase equal to the previous student (ema.decay = 0).
Our choices: 50k updates per phase, lr 1e-4 (the paper tunes both per data set).
The teacher is the DDPM CIFAR-10 model with a 1024-step cosine chain and v-prediction:

    python -m gen_jax.main --config=configs/ddpm/cifar10.py --workdir=runs/c10_v \\
      --config.method.num_timesteps=1024 --config.method.beta_schedule=cosine \\
      --config.method.prediction=v
    python -m gen_jax.main --config=configs/distillation/cifar10.py --workdir=runs/c10_pd \\
      --config.method.teacher_workdir=runs/c10_v
"""

from configs import common
from configs.ddpm import cifar10
from configs.distillation import _distillation


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  teacher = cifar10.get_config("smoke" if args.smoke else None)
  c = _distillation.distillation_config(teacher, teacher_steps=1024, student_steps=4,
                                        steps_per_phase=50_000)
  c.batch_size = 128
  c.optim.learning_rate = 1e-4
  c.optim.grad_clip_norm = 1.0
  if args.smoke:
    _distillation.smoke_distillation(c)
  c.lock()
  return c
