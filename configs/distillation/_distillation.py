"""The progressive-distillation part shared by the configs in this folder."""

from __future__ import annotations

import ml_collections

from configs import common


def distillation_config(teacher: ml_collections.ConfigDict, *, teacher_steps: int,
                        student_steps: int, steps_per_phase: int) -> ml_collections.ConfigDict:
  """A progressive_distillation run on the data of the teacher's config `teacher`.

  The network, process and parameterisation come from the teacher's run (its workdir's
  config.json, `method.teacher_workdir`); this config only sets the data, the phases and
  the optimiser. num_train_steps = log2(teacher_steps / student_steps) * steps_per_phase.
  """
  c = common.base_config()
  c.data = teacher.data.copy_and_resolve_references()
  c.method = ml_collections.ConfigDict(dict(
      name="progressive_distillation",
      teacher_workdir="",  # the --workdir of the trained teacher (a diffusion/ddpm run)
      teacher_steps=teacher_steps,  # DDIM steps of the teacher halved by the first phase
      student_steps=student_steps,  # steps of the final student
      steps_per_phase=steps_per_phase,
  ))
  phases = (teacher_steps // student_steps).bit_length() - 1
  c.num_train_steps = phases * steps_per_phase
  c.ema.decay = 0.0  # the teacher of each phase is the previous student's own weights
  c.optim.schedule = "linear"  # annealed to 0 within each phase (the paper's schedule)
  c.sample.sampler = "ddim"  # deterministic DDIM on the student's grid
  return c


def smoke_distillation(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Two phases of two steps, 16 -> 8 -> 4 (the teacher's chain must have 16 | T)."""
  common.smoke(c)
  c.method.teacher_steps = 16
  c.method.student_steps = 4
  c.method.steps_per_phase = 2
  c.num_train_steps = 4
  return c
