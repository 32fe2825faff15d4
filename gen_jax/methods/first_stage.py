"""A trained autoencoder run as the first stage of a latent (second-stage) model.

    first = load_first_stage("runs/ldm_mnist_autoencoder", image_shape=(28, 28, 1),
                             expected_latent_shape=net_input_shape)
    z = first.latent_scale * first.encode(x, rng)      # train the second stage on z
    x = first.decode(z_sampled / first.latent_scale)    # images from its samples

The first stage is any `vae` run (normally configs/latent_diffusion/autoencoder_*.py):
its `config.json` rebuilds the method and the newest checkpoint's EMA parameters are
restored (read-only; nothing in the workdir changes). Latents are scaled to unit variance
by `latent_scale` = 1 / latent_std, the std of every element of z ~ q(z | x) over the
evaluation split, measured by the first stage's evaluation of that same checkpoint
(`eval/<step>.json`, written at the last training step when trainer.eval_every_steps
divides it, or by `--mode=eval`). Rombach et al. measure it on one training batch
(`scale_factor = 1 / z.flatten().std()`); here it is the whole (or `eval.max_batches` of
the) evaluation split, with the step, seed and example count recorded beside it.

Every problem is a `FirstStageError` naming the workdir and the fix: a missing workdir, a
run that is not a VAE, no checkpoint, an unreadable checkpoint or one trained on images
of another channel count, no recorded latent std, an image size the autoencoder cannot
downsample, and a latent shape that differs from the one the second stage's network takes.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Callable, NamedTuple, Sequence

import jax
import ml_collections

from gen_jax.data.sources import DatasetInfo
from gen_jax.methods.pretrained import CheckpointDoesNotFit, restore_train_state
from gen_jax.methods.vae import build_vae
from gen_jax.vae.gaussian import reparameterize


class FirstStageError(ValueError):
  """A first-stage workdir that cannot serve a second stage; the message says why."""


class FirstStage(NamedTuple):
  """A restored first stage (unpacks as encode, decode, latent_shape, latent_scale).

  Attributes:
    encode: (x [B, H, W, C] in [-1, 1], rng=None) -> z [B, *latent_shape]: the posterior
      mean without a key, a draw of q(z | x) with one (unscaled). Jitted; pure.
    decode: z [B, *latent_shape] (unscaled) -> the decoder's mean [B, H, W, C].
    latent_shape: shape of one example's latent, e.g. (7, 7, 4) for 28x28 at f = 4.
    latent_scale: 1 / std of the latents; the second stage models latent_scale * z.
  """

  encode: Callable[..., jax.Array]
  decode: Callable[[jax.Array], jax.Array]
  latent_shape: tuple[int, ...]
  latent_scale: float


def check_latent_shape(latent_shape: Sequence[int], expected: Sequence[int],
                       workdir: str | pathlib.Path = "") -> None:
  """Raises FirstStageError when the first stage's latents do not fit the second stage."""
  if tuple(latent_shape) != tuple(expected):
    where = f" in {workdir}" if workdir else ""
    raise FirstStageError(
        f"The first stage{where} encodes images into latents of shape {tuple(latent_shape)}, "
        f"but the second stage's network takes inputs of shape {tuple(expected)}. Build the "
        "second stage's network for the first stage's latent shape (its channels are the "
        "first stage's model.z_channels, its size the image size / 2^(len(ch_mult) - 1)), "
        "or point it at a first stage with that latent shape.")


def _read_config(workdir: pathlib.Path) -> ml_collections.ConfigDict:
  if not workdir.is_dir():
    raise FirstStageError(
        f"The first-stage workdir {str(workdir)!r} does not exist. Train the autoencoder "
        "first, e.g. `python -m gen_jax.main --config=configs/latent_diffusion/"
        f"autoencoder_mnist.py --workdir={workdir}`, and point the second stage at it.")
  path = workdir / "config.json"
  try:
    config = ml_collections.ConfigDict(json.loads(path.read_text()))
  except (OSError, json.JSONDecodeError) as e:
    raise FirstStageError(
        f"The first-stage workdir {workdir} has no readable config.json ({type(e).__name__}: "
        f"{e}); it is not a finished gen_jax run. Point the second stage at the workdir of "
        "a trained autoencoder.") from e
  name = config.get("method", {}).get("name")
  if name != "vae":
    raise FirstStageError(f"{workdir} is a {name!r} run; a first stage must be a 'vae' run "
                          "(configs/latent_diffusion/autoencoder_*.py).")
  return config


def _latent_std(workdir: pathlib.Path, step: int) -> float:
  path = workdir / "eval" / f"{step}.json"
  try:
    std = float(json.loads(path.read_text())["results"]["latent_std"])
  except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
    std = float("nan")
  if not std > 0:
    raise FirstStageError(
        f"No latent std is recorded for the checkpoint at step {step} of {workdir} ({path} "
        "is missing or holds no results.latent_std). Evaluate that checkpoint once: "
        f"`python -m gen_jax.main --config=<the first stage's config> --workdir={workdir} "
        "--mode=eval`.")
  return std


class RestoredFirstStage(NamedTuple):
  """What `restore_first_stage` read from a first-stage workdir.

  Attributes:
    method: the first stage's `VAEMethod`, built for the second stage's image shape.
    params: its EMA parameters (device arrays on the first device).
    step: the restored checkpoint's step.
    latent_scale: 1 / latent_std recorded by the evaluation of that checkpoint.
    config: the first stage's resolved config (its config.json).
  """

  method: Any
  params: Any
  step: int
  latent_scale: float
  config: ml_collections.ConfigDict


def restore_first_stage(workdir: str | pathlib.Path, image_shape: Sequence[int], *,
                        expected_latent_shape: Sequence[int] | None = None,
                        networks: Sequence[str] | None = None) -> RestoredFirstStage:
  """The newest checkpoint of a first-stage run: its method, EMA parameters and scale.

  Arguments, checks and errors as `load_first_stage`, which wraps this into functions;
  with `networks`, a run whose config.model.name is not one of them is refused before
  anything is restored.
  """
  workdir = pathlib.Path(workdir)
  config = _read_config(workdir)
  network = config.get("model", {}).get("name")
  if networks is not None and network not in networks:
    raise FirstStageError(
        f"The first stage in {workdir} is a 'vae' run with the {network!r} network; this "
        f"second stage needs one of: {', '.join(networks)} (a KL autoencoder, whose latent "
        "is a spatial map). Train configs/latent_diffusion/autoencoder_*.py and point the "
        "second stage at that run.")
  shape = tuple(int(d) for d in image_shape)
  try:
    method = build_vae(config, DatasetInfo(shape, 0, 0))
  except ValueError as e:
    raise FirstStageError(f"The first stage in {workdir} cannot encode images of shape "
                          f"{shape}: {e}") from e

  try:
    restored, step = restore_train_state(workdir / "checkpoints", method)
  except CheckpointDoesNotFit as e:
    raise FirstStageError(
        f"The checkpoint at step {e.step} of {workdir} could not be restored for images of "
        f"shape {shape} ({e}). It is unreadable, or the first stage was trained on images "
        f"with another channel count than {shape[-1]}.") from e
  if restored is None:
    raise FirstStageError(f"{workdir / 'checkpoints'} holds no checkpoint; train the first "
                          "stage (--mode=train) before using it.")

  if expected_latent_shape is not None:
    check_latent_shape(method.latent_shape, expected_latent_shape, workdir)
  return RestoredFirstStage(method=method, params=restored.ema_params, step=int(step),
                            latent_scale=1.0 / _latent_std(workdir, int(step)), config=config)


def load_first_stage(workdir: str | pathlib.Path, image_shape: Sequence[int], *,
                     expected_latent_shape: Sequence[int] | None = None) -> FirstStage:
  """Restores the newest checkpoint of a first-stage run for images of `image_shape`.

  Args:
    workdir: the first stage's run directory (config.json, checkpoints/, eval/).
    image_shape: (H, W, C) of the images the second stage encodes; a convolutional first
      stage takes any H, W divisible by its downsampling factor, the channels must be the
      ones it was trained on.
    expected_latent_shape: the input shape of the second stage's network; checked when
      given.

  Returns:
    FirstStage(encode, decode, latent_shape, latent_scale) with the EMA parameters.

  Raises:
    FirstStageError: see the module docstring.
  """
  first = restore_first_stage(workdir, image_shape,
                              expected_latent_shape=expected_latent_shape)
  method, params = first.method, first.params

  def encode(x, rng=None):
    mean, logvar = method.encode(params, x)
    return mean if rng is None else reparameterize(rng, mean, logvar)

  def decode(z):
    return method.decode_mean(params, z)

  return FirstStage(encode=jax.jit(encode), decode=jax.jit(decode),
                    latent_shape=tuple(method.latent_shape), latent_scale=first.latent_scale)
