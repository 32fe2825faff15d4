"""On-device ancestral samplers of autoregressive models, each one `lax` loop.

`sample_raster`: images in raster order. Step s runs the network on the partly filled
image and fills one pixel (or, for channel-conditional networks, one channel of one
pixel); a network that sees only earlier positions makes this an exact ancestral sample.
H * W (* C) network evaluations.

`generate_cached` / `generate_naive`: sequences (WaveNet). The cached generator carries the
network's per-layer ring buffers (`WaveNet.step`), one O(layers) step per sample; the naive
one re-runs the network on the last receptive field at every step (O(receptive field) per
sample). Both draw step t's value with the key fold_in(rng, t), so with the same rng they
give the same samples (tested).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def sample_raster(apply_fn: Callable[[jax.Array], jax.Array],
                  draw_fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
                  shape: tuple[int, int, int, int], rng: jax.Array,
                  channel_steps: bool) -> jax.Array:
  """Fills x [B, H, W, C] position by position.

  Args:
    apply_fn: x [B, H, W, C] -> network output ([B, H, W, C, P] or [B, H, W, P]).
    draw_fn: (output at the position [B, C, P] or [B, P], values so far [B, C], key)
      -> new values [B, C] (channel_steps: only the current channel is used).
    shape: (B, H, W, C).
    rng: key; step s uses fold_in(rng, s).
    channel_steps: one step per channel of each pixel (channel-conditional networks) or
      one per pixel.

  Returns:
    x [B, H, W, C] with every position drawn.
  """
  b, h, w, c = shape
  per_pixel = c if channel_steps else 1

  def body(s, x):
    pixel, channel = jnp.divmod(s, per_pixel)
    i, j = jnp.divmod(pixel, w)
    out = apply_fn(x)
    out_ij = jax.lax.dynamic_index_in_dim(
        jax.lax.dynamic_index_in_dim(out, i, 1, False), j, 1, False)
    x_ij = jax.lax.dynamic_index_in_dim(
        jax.lax.dynamic_index_in_dim(x, i, 1, False), j, 1, False)
    new = draw_fn(out_ij, x_ij, jax.random.fold_in(rng, s))
    if channel_steps:
      new = jnp.where(jnp.arange(c)[None, :] == channel, new, x_ij)
    return jax.lax.dynamic_update_slice(x, new[:, None, None, :].astype(x.dtype),
                                        (0, i, j, 0))

  return jax.lax.fori_loop(0, h * w * per_pixel, body, jnp.zeros(shape, jnp.float32))


def generate_cached(step_fn: Callable, cache, draw_fn: Callable, first_input: jax.Array,
                    num_steps: int, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Samples num_steps values with a cached one-step network.

  Args:
    step_fn: (input at t - 1 [B, F], cache) -> (output [B, P], cache).
    cache: the initial cache (zeros: nothing before t = 0).
    draw_fn: (output [B, P], key) -> (value [B, ...], network input features [B, F]).
    first_input: the input for t = 0 (zeros, as the network's shift pads).
    num_steps: T.
    rng: key; step t uses fold_in(rng, t).

  Returns:
    (values [B, T, ...], outputs [B, T, P]).
  """

  def body(carry, t):
    cache, x_in = carry
    out, cache = step_fn(x_in, cache)
    value, features = draw_fn(out, jax.random.fold_in(rng, t))
    return (cache, features), (value, out)

  _, (values, outs) = jax.lax.scan(body, (cache, first_input), jnp.arange(num_steps))
  return jnp.moveaxis(values, 0, 1), jnp.moveaxis(outs, 0, 1)


def generate_naive(apply_fn: Callable, draw_fn: Callable, values_to_input: Callable,
                   value_shape: tuple[int, ...], value_dtype, num_steps: int,
                   receptive_field: int, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Samples num_steps values re-running the whole network on a receptive-field window.

  At step t the window holds positions [s, s + L) with L = min(T, R + 1) and
  s = clip(t - R, 0, T - L); the network's output at t - s is exact because the network is
  causal and zero-padded at the sequence start like the full-length call.

  Args:
    apply_fn: network inputs [B, L, F] -> outputs [B, L, P].
    draw_fn: as for generate_cached.
    values_to_input: values [B, L, ...] -> network inputs [B, L, F].
    value_shape, value_dtype: (B, ...) and dtype of one step's value.
    num_steps: T.
    receptive_field: R (the output at t sees t - R .. t - 1).
    rng: key; step t uses fold_in(rng, t).

  Returns:
    (values [B, T, ...], outputs [B, T, P]).
  """
  length = min(num_steps, receptive_field + 1)
  b = value_shape[0]

  def body(t, carry):
    values, outs = carry
    start = jnp.clip(t - receptive_field, 0, num_steps - length)
    window = jax.lax.dynamic_slice_in_dim(values, start, length, axis=1)
    out = jax.lax.dynamic_index_in_dim(apply_fn(values_to_input(window)), t - start, 1, False)
    value, _ = draw_fn(out, jax.random.fold_in(rng, t))
    values = jax.lax.dynamic_update_index_in_dim(values, value.astype(values.dtype), t, 1)
    outs = jax.lax.dynamic_update_index_in_dim(outs, out, t, 1)
    return values, outs

  values = jnp.zeros((b, num_steps, *value_shape[1:]), value_dtype)
  p = jax.eval_shape(lambda: apply_fn(values_to_input(values[:, :length]))).shape[-1]
  outs = jnp.zeros((b, num_steps, p), jnp.float32)
  return jax.lax.fori_loop(0, num_steps, body, (values, outs))
