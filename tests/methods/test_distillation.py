"""Progressive distillation: the two-step target, a 4-step student that matches its
16-step teacher on a 2-D mixture (same noise), and the run built from a teacher's workdir."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gen_jax.core.sample import SampleSpec
from gen_jax.data import DatasetInfo
from gen_jax.data.toy import TOY_DISTRIBUTIONS
from gen_jax.diffusion import make_schedule
from gen_jax.diffusion.distillation import distillation_target, student_grid
from gen_jax.methods import build_method
from gen_jax.methods.distillation import ProgressiveDistillation
from gen_jax.samplers import ddim_sample
from gen_jax.train import checkpoint as checkpoint_lib
from gen_jax.train import loop
from gen_jax.train.experiment import write_config
from tests.train.helpers import load_config

TOY = DatasetInfo(image_shape=(2,), num_classes=8, num_examples=100)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_target_is_where_two_teacher_ddim_steps_land(prediction):
  """At i = 1 the target is the teacher's two-step DDIM sample from z_t (the student's one
  step from t to the clean data returns its x0 estimate); at i > 1 one student DDIM step
  with x0 = target lands on the teacher's z_t''."""
  schedule = make_schedule("cosine", 32)
  teacher = lambda x, t: jnp.tanh(x) * (0.5 + t[:, None] / 64.0)
  z = jax.random.normal(jax.random.key(0), (5, 2))
  n = 4  # student steps: t = 7, 15, 23, 31; teacher half steps in between
  one = jnp.ones((5,), jnp.int32)
  target = distillation_target(teacher, schedule, z, one, jnp.int32(n),
                               prediction=prediction, clip_x0=False)
  two_steps = ddim_sample(teacher, schedule, rng=jax.random.key(1), init_noise=z,
                          timesteps=jnp.array([7, 3]), prediction=prediction, clip_x0=False)
  np.testing.assert_allclose(target, two_steps.samples, rtol=1e-5, atol=1e-5)

  # i = 3: from t = 23 via t' = 19 to t'' = 15.
  target = distillation_target(teacher, schedule, z, 3 * one, jnp.int32(n),
                               prediction=prediction, clip_x0=False)
  a, s = (np.asarray(v) for v in schedule.marginal_coef(jnp.array([23, 19, 15])))
  def step(x, t, a0, s0, a1, s1):
    out = teacher(x, jnp.full((5,), t))
    if prediction == "v":
      x0 = a0 * x - s0 * out
    else:
      x0 = (x - s0 * out) / a0
    return a1 * x0 + s1 * (x - a0 * x0) / s0
  z2 = step(step(z, 23, a[0], s[0], a[1], s[1]), 19, a[1], s[1], a[2], s[2])
  student_step = a[2] * target + s[2] * (z - a[0] * target) / s[0]
  np.testing.assert_allclose(student_step, z2, rtol=1e-4, atol=1e-5)


def _teacher_method(num_timesteps=64):
  c = load_config("ddpm/toy_eight_gaussians.py", "smoke")
  c.model.features = (64, 64)
  c.method.num_timesteps = num_timesteps
  c.method.prediction = "v"
  c.optim.learning_rate = 2e-3
  c.optim.schedule = "constant"
  return c, build_method(c, TOY)


def _train(method, state, data, rng):
  """`update` over the batches data [S, B, 2], the EMA a copy of the parameters (decay 0)."""
  def body(state, xs):
    batch, i = xs
    state, _ = method.update(state, {"image": batch}, jax.random.fold_in(rng, i))
    return state.replace(step=state.step + 1, ema_params=state.params), None
  return jax.jit(lambda s: jax.lax.scan(body, s, (data, jnp.arange(data.shape[0])))[0])(state)


@pytest.mark.slow  # ~25 s of CPU on a cold compilation cache: a teacher and two phases
def test_four_step_student_matches_its_sixteen_step_teacher():
  """A tiny MLP teacher (v-prediction, 64-step cosine chain, 300 steps of 128 points of 8
  Gaussians) is distilled 16 -> 8 -> 4 steps (2 phases of 200 steps). From the same noise,
  the 4-step student's samples are within RMS 0.1 of the teacher's 16-step DDIM samples and
  closer than half the teacher's own 4-step DDIM samples (measured: 0.016 vs 0.286; the
  data spans about [-2.8, 2.8])."""
  _, teacher = _teacher_method()
  rng = np.random.default_rng(0)
  data = TOY_DISTRIBUTIONS.get("eight_gaussians").sample(rng, 300 * 128)[0]
  state = teacher.init(jax.random.key(0), None)
  state = _train(teacher, state, jnp.asarray(data.reshape(300, 128, 2)), jax.random.key(1))
  student = dataclasses.replace(teacher, optimizer=optax.adam(1e-3))
  distill = ProgressiveDistillation(student=student, teacher_params=state.ema_params,
                                    teacher_steps=16, student_steps=4, steps_per_phase=200)
  dstate = distill.init(jax.random.key(2), None)
  data = TOY_DISTRIBUTIONS.get("eight_gaussians").sample(rng, 400 * 128)[0]
  dstate = _train(distill, dstate, jnp.asarray(data.reshape(400, 128, 2)), jax.random.key(3))
  assert int(dstate.step) == 400

  z = jax.random.normal(jax.random.key(4), (1000, 2))
  def teacher_samples(n):
    spec = SampleSpec(sampler="ddim", sampler_options={
        "timesteps": student_grid(64, n), "init_noise": z, "eta": 0.0})
    return np.asarray(teacher.sample(state, jax.random.key(5), 1000, spec).samples)
  reference, teacher4 = teacher_samples(16), teacher_samples(4)
  out = distill.sample(dstate, jax.random.key(5), 1000, SampleSpec(
      sampler_options={"init_noise": z}))
  assert out.nfe == 4
  rms = lambda x: float(np.sqrt(np.mean(np.sum(np.square(x - reference), axis=-1))))
  student_rms, teacher4_rms = rms(np.asarray(out.samples)), rms(teacher4)
  print(f"RMS to the 16-step teacher: student(4) {student_rms:.4f}, "
        f"teacher(4) {teacher4_rms:.4f}")
  assert student_rms < 0.1 and student_rms < 0.5 * teacher4_rms


def _save_run(workdir, config, state):
  write_config(config, workdir)
  ckpt = checkpoint_lib.Checkpointer(workdir / "checkpoints", asynchronous=False)
  ckpt.save(1, state)
  ckpt.close()


def test_distillation_config_starts_the_student_from_the_teacher_workdir(tmp_path):
  tconfig, teacher = _teacher_method(num_timesteps=32)
  tstate = teacher.init(jax.random.key(0), None)
  _save_run(tmp_path / "teacher", tconfig, tstate)
  c = load_config("distillation/toy_eight_gaussians.py", "smoke")
  c.method.teacher_workdir = str(tmp_path / "teacher")
  method = build_method(c, TOY)
  assert (method.num_phases, method.student.prediction) == (2, "v")
  state = method.init(jax.random.key(1), None)
  for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(tstate.ema_params)):
    np.testing.assert_array_equal(a, b)
  assert [int(method.student_steps_at(jnp.int32(s))) for s in (0, 1, 2, 3, 9)] == [8, 8, 4,
                                                                                   4, 4]
  c.num_train_steps = 5
  with pytest.raises(ValueError, match="num_train_steps=4"):
    build_method(c, TOY)
  c.num_train_steps, c.method.teacher_steps = 4, 12
  with pytest.raises(ValueError, match="power of 2"):
    build_method(c, TOY)


@pytest.mark.slow
def test_distillation_smoke_config_runs_after_a_teacher_smoke_run(tmp_path):
  """configs/distillation/toy_eight_gaussians.py:smoke through the real loop, pointed at a
  teacher trained by configs/ddpm/toy_eight_gaussians.py:smoke (with T = 32)."""
  tconfig = load_config("ddpm/toy_eight_gaussians.py", "smoke")
  tconfig.method.num_timesteps = 32
  loop.train_and_evaluate(tconfig, tmp_path / "teacher")
  c = load_config("distillation/toy_eight_gaussians.py", "smoke")
  c.method.teacher_workdir = str(tmp_path / "teacher")
  state = loop.train_and_evaluate(c, tmp_path / "run")
  assert int(state.step) == c.num_train_steps
  record = json.loads((tmp_path / "run" / "eval" / f"{c.num_train_steps}.json").read_text())
  assert all(np.isfinite(v) for v in record["results"].values())
  assert (tmp_path / "run" / "samples" / f"step_{c.num_train_steps:08d}.png").is_file()
