"""2-D toy distributions: data for seconds-long CPU runs and exact densities for tests.

Each distribution in `TOY_DISTRIBUTIONS` draws points with an explicit NumPy generator,

    x, labels = TOY_DISTRIBUTIONS.get("eight_gaussians").sample(np.random.default_rng(0), 1000)

(x float32 [n, 2], labels int32 [n]) and, where one exists, gives the exact log-density
`log_prob(x [..., 2]) -> [...]` in jax.numpy, so `jax.grad` of it is the exact score.
The Gaussian mixtures also expose their component centres (`modes`) and width
(`mode_std`), which mode-coverage metrics of GANs use.

  eight_gaussians        8 isotropic Gaussians on a circle of radius 2, std 0.05;
                         label = component.
  twenty_five_gaussians  25 isotropic Gaussians on the 5x5 grid {-2,-1,0,1,2}^2, std 0.05;
                         label = component.
  gaussian               one correlated Gaussian, mean (0.5, -0.5), cov [[1, .8], [.8, 1]].
  two_moons              two interleaved half circles (as scikit-learn's make_moons),
                         centred and scaled by 1.5, Gaussian noise std 0.1; label = moon.
                         No closed-form density.
  checkerboard           uniform on the 8 dark squares of a 4x4 board over [-2, 2]^2
                         (squares of side 1, density 1/8 on them); label 0.

`ToySource` wraps a distribution as a random-access data source (data.source = "toy2d"):
a fixed set of points per split, whose examples are {"image": float32 [2], "label"}; the
pipeline passes float data through unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from gen_jax.core.registry import Registry

TOY_DISTRIBUTIONS: Registry["ToyDistribution"] = Registry("toy distribution")

# Points per split of the toy2d source; the seeds make the two splits disjoint draws.
TOY_SPLIT_SIZES = {"train": 20_000, "eval": 5_000}
TOY_SPLIT_SEEDS = {"train": 0, "eval": 1}


@dataclasses.dataclass(frozen=True)
class ToyDistribution:
  """A distribution over R^2.

  Attributes:
    name: registry name.
    sampler: (rng: np.random.Generator, n) -> (x float32 [n, 2], labels int32 [n]).
    num_classes: number of distinct labels (0 when every label is 0).
    log_prob: exact log-density, jnp [..., 2] -> [...], or None when there is no closed form.
    modes: [K, 2] component centres of a Gaussian mixture, else None.
    mode_std: the components' standard deviation, else None.
  """

  name: str
  sampler: Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]
  num_classes: int = 0
  log_prob: Callable | None = None
  modes: np.ndarray | None = None
  mode_std: float | None = None

  def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n points float32 [n, 2] and their labels int32 [n]."""
    x, labels = self.sampler(rng, int(n))
    return np.asarray(x, np.float32), np.asarray(labels, np.int32)


class GaussianMixture:
  """A mixture of isotropic Gaussians sum_k w_k N(mu_k, std^2 I) in D dimensions.

  Args:
    means: [K, D] component means.
    std: the shared standard deviation (scalar) or one per component [K].
    weights: [K] mixture weights (normalised here); uniform when None.
  """

  def __init__(self, means, std, weights=None):
    self.means = np.asarray(means, np.float64)
    k, _ = self.means.shape
    self.stds = np.broadcast_to(np.asarray(std, np.float64), (k,)).copy()
    w = np.ones(k) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (k,) or np.any(w < 0) or w.sum() <= 0:
      raise ValueError(f"weights must be {k} non-negative numbers, got {weights!r}.")
    self.weights = w / w.sum()

  @property
  def dim(self) -> int:
    return self.means.shape[1]

  def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n points [n, D] and their component indices [n]."""
    labels = rng.choice(len(self.weights), size=n, p=self.weights)
    noise = rng.standard_normal((n, self.dim))
    x = self.means[labels] + self.stds[labels, None] * noise
    return x.astype(np.float32), labels.astype(np.int32)

  def log_prob(self, x):
    """Exact log-density [...] of points x [..., D] (jax.numpy, differentiable)."""
    x = jnp.asarray(x)
    flat = x.reshape(-1, 1, self.dim)  # [N, 1, D]
    means = jnp.asarray(self.means, x.dtype)[None]  # [1, K, D]
    var = jnp.asarray(self.stds, x.dtype)[None] ** 2  # [1, K]
    sq = jnp.sum((flat - means) ** 2, axis=-1)  # [N, K]
    log_w = jnp.log(jnp.asarray(self.weights, x.dtype))[None]
    log_norm = -0.5 * self.dim * jnp.log(2 * math.pi * var)
    return logsumexp(log_w + log_norm - 0.5 * sq / var, axis=-1).reshape(x.shape[:-1])

  def mean(self) -> np.ndarray:
    """The mixture mean [D]."""
    return self.weights @ self.means

  def covariance(self) -> np.ndarray:
    """The mixture covariance [D, D]."""
    centred = self.means - self.mean()
    within = np.sum(self.weights * self.stds ** 2) * np.eye(self.dim)
    return within + (self.weights[:, None] * centred).T @ centred


def _mixture_distribution(name: str, means: np.ndarray, std: float) -> ToyDistribution:
  mixture = GaussianMixture(means, std)
  return ToyDistribution(name=name, sampler=mixture.sample, num_classes=len(means),
                         log_prob=mixture.log_prob, modes=np.asarray(means, np.float32),
                         mode_std=float(std))


def _ring_means(k: int, radius: float) -> np.ndarray:
  angles = 2 * np.pi * np.arange(k) / k
  return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _grid_means(values) -> np.ndarray:
  gx, gy = np.meshgrid(values, values, indexing="ij")
  return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float64)


GAUSSIAN_MEAN = np.array([0.5, -0.5])
GAUSSIAN_COV = np.array([[1.0, 0.8], [0.8, 1.0]])


def _gaussian_sample(rng: np.random.Generator, n: int):
  x = rng.multivariate_normal(GAUSSIAN_MEAN, GAUSSIAN_COV, size=n)
  return x, np.zeros(n, np.int32)


def _gaussian_log_prob(x):
  x = jnp.asarray(x)
  precision = jnp.asarray(np.linalg.inv(GAUSSIAN_COV), x.dtype)
  d = x - jnp.asarray(GAUSSIAN_MEAN, x.dtype).reshape((1,) * (x.ndim - 1) + (2,))
  log_det = float(np.linalg.slogdet(GAUSSIAN_COV)[1])
  return -0.5 * (jnp.einsum("...i,ij,...j->...", d, precision, d) + log_det
                 + 2 * math.log(2 * math.pi))


def _two_moons_sample(rng: np.random.Generator, n: int):
  labels = rng.integers(0, 2, size=n)
  angle = rng.uniform(0.0, np.pi, size=n)
  upper = np.stack([np.cos(angle), np.sin(angle)], axis=1)
  lower = np.stack([1.0 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
  x = np.where(labels[:, None] == 0, upper, lower)
  x = 1.5 * (x - np.array([0.5, 0.25])) + 0.1 * rng.standard_normal((n, 2))
  return x, labels


def _checkerboard_sample(rng: np.random.Generator, n: int):
  # Dark squares: (i + j) even for column i, row j of the 4x4 board of unit squares.
  squares = np.array([(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0])
  chosen = squares[rng.integers(0, len(squares), size=n)]
  x = chosen + rng.uniform(0.0, 1.0, size=(n, 2)) - 2.0
  return x, np.zeros(n, np.int32)


def _checkerboard_log_prob(x):
  x = jnp.asarray(x)
  cells = jnp.floor(x + 2.0)
  inside = jnp.all((cells >= 0) & (cells <= 3), axis=-1)
  dark = jnp.mod(cells[..., 0] + cells[..., 1], 2) == 0
  return jnp.where(inside & dark, jnp.log(1.0 / 8.0), -jnp.inf).astype(x.dtype)


for _dist in (
    _mixture_distribution("eight_gaussians", _ring_means(8, 2.0), 0.05),
    _mixture_distribution("twenty_five_gaussians", _grid_means([-2.0, -1.0, 0.0, 1.0, 2.0]),
                          0.05),
    ToyDistribution("gaussian", _gaussian_sample, log_prob=_gaussian_log_prob),
    ToyDistribution("two_moons", _two_moons_sample, num_classes=2),
    ToyDistribution("checkerboard", _checkerboard_sample, log_prob=_checkerboard_log_prob),
):
  TOY_DISTRIBUTIONS.add(_dist.name, _dist)


class ToySource:
  """A fixed draw of `num_examples` points from a toy distribution, as a data source.

  Examples are {"image": float32 [2], "label": int32}; `info.image_shape` is (2,).
  """

  def __init__(self, distribution: ToyDistribution, num_examples: int, seed: int):
    from gen_jax.data.sources import DatasetInfo  # pylint: disable=g-import-not-at-top
    self.distribution = distribution
    self._points, self._labels = distribution.sample(np.random.default_rng(seed), num_examples)
    self._points.flags.writeable = False
    self.info = DatasetInfo((2,), distribution.num_classes, num_examples)

  def __len__(self) -> int:
    return len(self._points)

  def __getitem__(self, index: int):
    return {"image": self._points[index], "label": self._labels[index]}

  def __repr__(self) -> str:
    return f"ToySource({self.distribution.name}, {self.info})"


def toy_source(name: str, split: str) -> ToySource:
  """The fixed "train" (20,000 points, seed 0) or "eval" (5,000, seed 1) set of `name`."""
  if split not in TOY_SPLIT_SIZES:
    raise ValueError(f"toy2d splits are {sorted(TOY_SPLIT_SIZES)}, not {split!r}.")
  return ToySource(TOY_DISTRIBUTIONS.get(name), TOY_SPLIT_SIZES[split], TOY_SPLIT_SEEDS[split])
