"""An adaptive Runge-Kutta ODE solver in pure JAX: Dormand-Prince 5(4) in `lax.while_loop`.

    dy/dt = f(t, y),   y(t0) = y0   ->   y(t1),  t1 < t0 allowed (integration backwards),

with y any pytree of float arrays. The solver is the one of scipy's `solve_ivp(method="RK45")`
that the official score_sde code calls on the host (Dormand & Prince 1980, "A family of
embedded Runge-Kutta formulae"; Hairer, Norsett & Wanner, "Solving ODEs I", II.4): 7 stages
with the first-same-as-last property (6 new evaluations of f per attempted step), the 5th
order solution propagated, the embedded 4th order one giving the local error estimate

    err = rms( (y5 - y4) / (atol + rtol max(|y|, |y_new|)) )        (over every element)

A step is accepted when err <= 1; the next step is h * clip(0.9 err^(-1/5), 0.2, 10), and
after a rejection the factor is capped at 1. The first step follows Hairer's heuristic
(`select_initial_step`, one extra evaluation). Everything runs on device under `jit`: the
while loop traces f once for the stages (the stages are a `fori_loop` over the Butcher
tableau), plus once for f(t0) and once for the initial-step heuristic.

Why not diffrax: it is a fine library, but it brings equinox/lineax/optimistix/jaxtyping and
pins against jax releases, and this 150-line solver is all that sampling and likelihoods need
(score_sde's users' first complaint was breakage on jax upgrades). One step size is shared by
the whole batch (the error norm runs over all elements), exactly like scipy on the flattened
batch in the paper's code; the number of function evaluations is therefore one number.
"""

from __future__ import annotations

from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
PyTree = Any

# Dormand-Prince 5(4) Butcher tableau (rows: stage i uses k_0..k_{i-1}).
_C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0])
_A = np.zeros((7, 7))
_A[1, :1] = [1 / 5]
_A[2, :2] = [3 / 40, 9 / 40]
_A[3, :3] = [44 / 45, -56 / 15, 32 / 9]
_A[4, :4] = [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729]
_A[5, :5] = [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656]
_A[6, :6] = [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]
_B5 = _A[6].copy()  # 5th order weights (= last row: FSAL)
_B4 = np.array([5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40])
_E = _B5 - _B4  # error weights
_ORDER = 4  # exponent 1 / (order + 1) of the controller uses the lower order


@flax.struct.dataclass
class ODESolution:
  """Result of `odeint_adaptive`.

  Attributes:
    y: the state at t1 (same pytree as y0).
    nfe: int32 scalar, evaluations of f (2 + 6 per attempted step).
    num_steps: int32 scalar, attempted steps (accepted + rejected).
    num_accepted: int32 scalar, accepted steps.
    success: bool scalar, t1 reached within max_steps.
  """

  y: PyTree
  nfe: Array
  num_steps: Array
  num_accepted: Array
  success: Array


def _rms_norm(tree: PyTree) -> Array:
  leaves = jax.tree.leaves(tree)
  total = sum(jnp.sum(jnp.square(leaf.astype(jnp.float32))) for leaf in leaves)
  count = sum(leaf.size for leaf in leaves)
  return jnp.sqrt(total / count)


def _scale(y: PyTree, y_new: PyTree, rtol: float, atol: float) -> PyTree:
  return jax.tree.map(lambda a, b: atol + rtol * jnp.maximum(jnp.abs(a), jnp.abs(b)), y, y_new)


def _axpy(y: PyTree, h: Array, k: PyTree) -> PyTree:
  return jax.tree.map(lambda a, b: a + h * b, y, k)


def _initial_step(f, t0, y0, f0, direction, rtol, atol) -> Array:
  """Hairer, Norsett & Wanner II.4 (scipy's select_initial_step); one evaluation of f."""
  scale = _scale(y0, y0, rtol, atol)
  d0 = _rms_norm(jax.tree.map(jnp.divide, y0, scale))
  d1 = _rms_norm(jax.tree.map(jnp.divide, f0, scale))
  h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1)
  y1 = _axpy(y0, direction * h0, f0)
  f1 = f(t0 + direction * h0, y1)
  d2 = _rms_norm(jax.tree.map(lambda a, b, s: (a - b) / s, f1, f0, scale)) / h0
  h1 = jnp.where(jnp.maximum(d1, d2) <= 1e-15, jnp.maximum(1e-6, h0 * 1e-3),
                 (0.01 / jnp.maximum(d1, d2)) ** (1.0 / (_ORDER + 1)))
  return jnp.minimum(100.0 * h0, h1)


def odeint_adaptive(
    f: Callable[[Array, PyTree], PyTree],
    y0: PyTree,
    t0: float,
    t1: float,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 4096,
    first_step: float | None = None,
    safety: float = 0.9,
) -> ODESolution:
  """Integrates dy/dt = f(t, y) from t0 to t1 with adaptive Dormand-Prince 5(4) steps.

  Args:
    f: (t float32 scalar, y pytree) -> dy/dt, same pytree structure and shapes as y.
    y0: the initial state (pytree of float arrays).
    t0, t1: start and end times (python floats or scalars); t1 < t0 integrates backwards.
    rtol, atol: relative and absolute tolerances of the local error (scipy's meaning).
    max_steps: cap on attempted steps; when hit, `success` is False and y is the state at
      the time reached (check it: the result is then not y(t1)).
    first_step: initial |h|; None uses the heuristic (one extra evaluation of f).
    safety: step-size safety factor.

  Returns:
    ODESolution with y(t1), nfe, step counts and success.
  """
  if rtol <= 0 or atol <= 0:
    raise ValueError(f"rtol and atol must be positive, got rtol={rtol}, atol={atol}.")
  if max_steps < 1:
    raise ValueError(f"max_steps must be >= 1, got {max_steps}.")
  t0 = jnp.asarray(t0, jnp.float32)
  t1 = jnp.asarray(t1, jnp.float32)
  direction = jnp.where(t1 >= t0, 1.0, -1.0).astype(jnp.float32)
  span = jnp.abs(t1 - t0)
  a, c, e = (jnp.asarray(v, jnp.float32) for v in (_A, _C, _E))
  b5 = jnp.asarray(_B5, jnp.float32)

  f0 = f(t0, y0)
  if first_step is None:
    h = _initial_step(f, t0, y0, f0, direction, rtol, atol)
    nfe0 = 2
  else:
    h = jnp.asarray(first_step, jnp.float32)
    nfe0 = 1
  h = jnp.minimum(h, span)

  def attempt(t, y, k0, h):
    """One DP5 step of signed size direction * h: (y5, k7 = f(t + h, y5), error norm)."""
    hs = direction * h
    ks = jax.tree.map(lambda k: jnp.zeros((7,) + k.shape, k.dtype).at[0].set(k), k0)

    def stage(i, ks):
      yi = jax.tree.map(lambda y_, k_: y_ + hs * jnp.tensordot(a[i], k_, axes=1), y, ks)
      ki = f(t + c[i] * hs, yi)
      return jax.tree.map(lambda k_, new: k_.at[i].set(new), ks, ki)

    ks = jax.lax.fori_loop(1, 7, stage, ks)
    y5 = jax.tree.map(lambda y_, k_: y_ + hs * jnp.tensordot(b5, k_, axes=1), y, ks)
    err = jax.tree.map(lambda k_: hs * jnp.tensordot(e, k_, axes=1), ks)
    scale = _scale(y, y5, rtol, atol)
    err_norm = _rms_norm(jax.tree.map(jnp.divide, err, scale))
    k7 = jax.tree.map(lambda k_: k_[6], ks)
    return y5, k7, err_norm

  def cond(carry):
    t, _, _, _, _, n, _ = carry
    return (jnp.abs(t - t0) < span) & (n < max_steps)

  def body(carry):
    t, y, k0, h, nfe, n, n_acc = carry
    remaining = span - jnp.abs(t - t0)
    h_step = jnp.minimum(h, remaining)
    last = h_step >= remaining
    y_new, k_new, err = attempt(t, y, k0, h_step)
    accept = err <= 1.0
    factor = jnp.clip(safety * jnp.power(jnp.maximum(err, 1e-10), -1.0 / (_ORDER + 1)), 0.2, 10.0)
    factor = jnp.where(accept, factor, jnp.minimum(factor, 1.0))
    t_new = jnp.where(last, t1, t + direction * h_step)
    t = jnp.where(accept, t_new, t)
    y = jax.tree.map(lambda new, old: jnp.where(accept, new, old), y_new, y)
    k0 = jax.tree.map(lambda new, old: jnp.where(accept, new, old), k_new, k0)
    return (t, y, k0, h_step * factor, nfe + 6, n + 1, n_acc + accept.astype(jnp.int32))

  zero = jnp.zeros((), jnp.int32)
  carry = (t0, y0, f0, h, zero + nfe0, zero, zero)
  t, y, _, _, nfe, n, n_acc = jax.lax.while_loop(cond, body, carry)
  return ODESolution(y=y, nfe=nfe, num_steps=n, num_accepted=n_acc,
                     success=jnp.abs(t - t0) >= span)
