"""Progressive distillation of a trained diffusion model into a few-step sampler.

Salimans & Ho, "Progressive Distillation for Fast Sampling of Diffusion Models" (ICLR 2022);
official code github:google-research/google-research `diffusion_distillation`. The maths
is `gen_jax.diffusion.distillation`; this is the run (`config.method.name =
"progressive_distillation"`):

* the teacher is the EMA of a trained `diffusion`/`ddpm` run on a DDPM chain, read from
  `config.method.teacher_workdir` (`methods.pretrained.load_run`); the student is the same
  model (network, process, parameterisation) initialised from the teacher's weights;
* phase p = 0..P-1 (P = log2(teacher_steps / student_steps)) lasts `steps_per_phase`
  optimiser steps and trains a student of n_p = teacher_steps / 2^(p+1) DDIM steps on the
  two-step targets of its teacher; at the start of each later phase the teacher becomes
  the EMA of the student so far, the student restarts from it, and the optimiser state is
  reset (so a schedule on the optimiser's step count restarts with each phase, as the
  paper's per-phase learning-rate decay);
* the teacher's weights live in the train state (`model_state["teacher"]`), so a run
  resumed from its checkpoint continues the same phase with the same teacher;
* `sample` draws from the student with deterministic DDIM on its grid of
  `student_steps` (`diffusion.distillation.student_grid`; `sampler_options.num_steps`
  asks for another n dividing T).

Why progressive distillation rather than consistency distillation: the student is the
teacher's own model (same network and parameterisation, sampled by the existing DDIM
sampler, so guidance, evaluation and every tool of the Diffusion method apply unchanged);
its target is exactly "land where the teacher's DDIM lands from the same noise", the
property the tests check; and it needs no perceptual distance (consistency distillation's
LPIPS needs pretrained weights that cannot be fetched here) and no extra boundary
parameterisation of the network.

Deviations from the paper: the teacher is the student's EMA at each phase boundary (the
paper's student weights; they coincide with ema.decay = 0); the weighting is the truncated
SNR max(SNR, 1) only; DDPM chains only (the paper uses continuous time).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from gen_jax.core.optim import build_optimizer, learning_rate_schedule
from gen_jax.core.sample import SampleSpec
from gen_jax.core.state import TrainState
from gen_jax.diffusion import guidance
from gen_jax.diffusion.distillation import distillation_loss, student_grid
from gen_jax.diffusion.schedules import DiffusionSchedule
from gen_jax.methods.base import METHODS, Batch, Method, Metrics, single_network_step
from gen_jax.methods.diffusion import Diffusion
from gen_jax.methods.pretrained import PretrainedRunError, load_run

TRAIN_HINT = "python -m gen_jax.main --config=configs/ddpm/<data>.py --workdir=<dir>"


@dataclasses.dataclass(frozen=True, eq=False)
class ProgressiveDistillation(Method):
  """Attributes:
    student: the teacher's `Diffusion` with this run's optimiser (a chain, not discrete).
    teacher_params: the teacher's EMA parameters (only read by `init`).
    teacher_steps: N0, the teacher's DDIM steps that the first phase halves.
    student_steps: K, the final student's steps (N0 / K a power of 2, K | T).
    steps_per_phase: optimiser steps per halving.
  """

  student: Diffusion
  teacher_params: Any
  teacher_steps: int
  student_steps: int
  steps_per_phase: int

  grad_accumulation_refusal = "its phases reset the optimiser state"

  @property
  def num_phases(self) -> int:
    return int(round(math.log2(self.teacher_steps // self.student_steps)))

  @property
  def optimizer(self) -> optax.GradientTransformation:
    return self.student.optimizer

  def student_steps_at(self, step: jax.Array) -> jax.Array:
    """n_p (int32 scalar) of the phase of optimiser step `step` (the last after the end)."""
    phase = jnp.minimum(step // self.steps_per_phase, self.num_phases - 1)
    return jnp.asarray(self.teacher_steps, jnp.int32) // jnp.left_shift(1, phase + 1)

  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    del rng, batch
    params = jax.tree.map(jnp.asarray, self.teacher_params)
    return TrainState.create(params, self.optimizer.init(params),
                             model_state={"teacher": jax.tree.map(jnp.copy, params)})

  def losses(self, params, teacher, batch: Batch, rng: jax.Array, n: jax.Array) -> jax.Array:
    """The per-example distillation loss [B] of student `params` against `teacher`."""
    s = self.student
    labels = guidance.batch_labels(batch, s.num_classes)
    return distillation_loss(
        s.denoise_fn(params, labels, 0.0), s.denoise_fn(teacher, labels, 0.0), s.process,
        batch["image"].astype(jnp.float32), rng, n, prediction=s.sample_prediction,
        clip_x0=bool(s.clip_x0))

  def update(self, state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    # A new phase: the teacher is the student so far, the student restarts from it.
    new_phase = (state.step > 0) & (state.step % self.steps_per_phase == 0) & (
        state.step < self.num_phases * self.steps_per_phase)
    pick = lambda new, old: jax.tree.map(lambda a, b: jnp.where(new_phase, a, b), new, old)
    params = pick(state.ema_params, state.params)
    state = state.replace(
        params=params, opt_state=pick(self.optimizer.init(params), state.opt_state),
        model_state={"teacher": pick(state.ema_params, state.model_state["teacher"])})
    n = self.student_steps_at(state.step)
    teacher = state.model_state["teacher"]

    def loss_fn(p):
      return jnp.mean(self.losses(p, teacher, batch, rng, n)), {
          "student_steps": n.astype(jnp.float32)}

    sched = self.student.lr_schedule  # restarts with each phase, as the optimiser's count
    return single_network_step(state, loss_fn, self.optimizer,
                               None if sched is None else
                               lambda step: sched(step % self.steps_per_phase))

  def evaluate(self, state: TrainState, batch: Batch, rng: jax.Array) -> Metrics:
    n = self.student_steps_at(state.step)
    return {"loss": self.losses(state.ema_params, state.model_state["teacher"], batch, rng,
                                n)}

  def sample(self, state: TrainState, rng: jax.Array, num_samples: int,
             spec: SampleSpec = SampleSpec()):
    """Deterministic DDIM on the student's grid of `student_steps` (or
    spec.sampler_options["num_steps"]); other sampler options (init_noise) pass through."""
    spec.refuse_unsupported("progressive_distillation", ("sampler_options",))
    options = dict(spec.sampler_options)
    n = int(options.pop("num_steps", self.student_steps))
    grid = student_grid(self.student.process.num_timesteps, n)
    return self.student.sample(state, rng, num_samples, SampleSpec(
        labels=spec.labels, sampler="ddim",
        sampler_options={**options, "timesteps": grid, "eta": 0.0}))


@METHODS.register("progressive_distillation")
def build_progressive_distillation(config, info) -> ProgressiveDistillation:
  """From config.method (teacher_workdir, teacher_steps, student_steps, steps_per_phase),
  config.optim and config.num_train_steps (= phases * steps_per_phase)."""
  m = config.method
  role = "the distillation teacher (method.teacher_workdir)"
  run = load_run(m.teacher_workdir, info, method_names=("diffusion", "ddpm"), role=role,
                 train_hint=TRAIN_HINT)
  teacher = run.method
  if not isinstance(teacher.process, DiffusionSchedule) or teacher.discrete:
    raise PretrainedRunError(f"{role}: progressive distillation here distils DDPM chains; the "
                             f"teacher in {m.teacher_workdir} has a "
                             f"{type(teacher.process).__name__} process.")
  n0, k = int(m.teacher_steps), int(m.student_steps)
  big_t = teacher.process.num_timesteps
  if k < 1 or n0 <= k or n0 % k or (n0 // k) & (n0 // k - 1) or big_t % n0:
    raise ValueError(f"method.teacher_steps={n0} and student_steps={k}: teacher_steps must "
                     f"be student_steps times a power of 2 and divide the teacher's chain of "
                     f"T={big_t} steps.")
  phases = int(round(math.log2(n0 // k)))
  steps = int(m.steps_per_phase)
  if config.num_train_steps != phases * steps:
    raise ValueError(f"num_train_steps={config.num_train_steps} but {phases} phases of "
                     f"method.steps_per_phase={steps} take {phases * steps}; set "
                     f"--config.num_train_steps={phases * steps}.")
  student = dataclasses.replace(
      teacher, optimizer=build_optimizer(config.optim, steps),
      lr_schedule=learning_rate_schedule(config.optim, steps))
  return ProgressiveDistillation(student=student, teacher_params=run.params,
                                 teacher_steps=n0, student_steps=k, steps_per_phase=steps)
