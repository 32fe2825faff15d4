"""The history of generated images that CycleGAN's discriminators train on.

Shrivastava et al., "Learning from Simulated and Unsupervised Images through Adversarial
Training" (CVPR 2017), as used by CycleGAN (Zhu et al. 2017) and implemented by the
official code's `util/image_pool.py: ImagePool.query`. Each image of a batch of fakes is
handled in order:

* while fewer than `pool_size` images are stored, it is stored and returned as is;
* afterwards, with probability 1/2 a uniformly chosen stored image is returned and the
  new image takes its place; otherwise the new image is returned and the pool is unchanged.

The pool is a pytree of arrays, `{"images": [P, H, W, C], "count": int32 []}`, kept in the
train state (`model_state`), so it is checkpointed with it and replicated like the rest
of the state; it is never a Python object with hidden state.

Randomness: `query(pool, fakes, rng)` draws, for the image at batch row i, a uniform
u_i ~ U[0, 1) and an index j_i ~ U{0, ..., P - 1} from `fold_in(rng, i)`. The caller
passes a key split from the train step's key (itself `fold_in(loop_key, step)`), so the
draws depend only on the seed and the step: a resumed run and an 8-device run make the
same choices as an uninterrupted 1-device run.

Deviations from the official code: the coin is "u < 1/2 returns a stored image" (the
reference returns one when u > 1/2, the same probability); the draws come from JAX keys
instead of Python's `random`. Rows are processed sequentially (`lax.fori_loop`), as in
the reference, so two rows of one batch may replace the same slot.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Pool = dict[str, jax.Array]

RETURN_STORED_PROBABILITY = 0.5


def init_pool(pool_size: int, image_shape: tuple[int, ...],
              dtype: jnp.dtype = jnp.float32) -> Pool:
  """An empty pool of `pool_size` images of `image_shape` (zeros until filled)."""
  if pool_size < 0:
    raise ValueError(f"pool_size must be >= 0, got {pool_size}.")
  return {"images": jnp.zeros((pool_size, *image_shape), dtype),
          "count": jnp.zeros((), jnp.int32)}


def query(pool: Pool, fakes: jax.Array, rng: jax.Array) -> tuple[Pool, jax.Array]:
  """(new pool, images for the discriminator), as the module docstring describes.

  Args:
    pool: {"images": [P, H, W, C], "count": int32 []}; P = 0 disables the pool.
    fakes: [B, H, W, C] generated images (the caller stops their gradient).
    rng: key of this query (see the module docstring).

  Returns:
    The updated pool and [B, H, W, C] images: each row is its fake or a stored image.
  """
  size = pool["images"].shape[0]
  if size == 0:
    return pool, fakes
  if fakes.shape[1:] != pool["images"].shape[1:]:
    raise ValueError(f"Fakes of shape {fakes.shape[1:]} do not fit a pool of "
                     f"{pool['images'].shape[1:]} images.")
  fakes = fakes.astype(pool["images"].dtype)

  def body(i, carry):
    images, count, out = carry
    fake = fakes[i]
    r_coin, r_index = jax.random.split(jax.random.fold_in(rng, i))
    filling = count < size
    swap = jnp.logical_and(~filling,
                           jax.random.uniform(r_coin) < RETURN_STORED_PROBABILITY)
    slot = jnp.where(filling, count, jax.random.randint(r_index, (), 0, size))
    stored = images[slot]
    returned = jnp.where(swap, stored, fake)
    write = jnp.logical_or(filling, swap)
    images = images.at[slot].set(jnp.where(write, fake, stored))
    out = out.at[i].set(returned)
    return images, jnp.where(filling, count + 1, count), out

  images, count, out = jax.lax.fori_loop(
      0, fakes.shape[0], body, (pool["images"], pool["count"], jnp.zeros_like(fakes)))
  return {"images": images, "count": count}, out
