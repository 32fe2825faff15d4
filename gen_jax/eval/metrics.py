"""Sample-quality metrics on feature vectors: FID, KID, IS, precision/recall, density/coverage.

Every metric compares features of real data x [N, D] and of generated samples y [M, D]
(Inception pool3, a domain classifier's penultimate layer, or the data itself for 2-D toy
data; see `gen_jax.eval.features`).

* Frechet distance (Heusel et al. 2017, "GANs trained by a two time-scale update rule"):
    d^2 = |mu_x - mu_y|^2 + tr(S_x) + tr(S_y) - 2 tr((S_x S_y)^{1/2}),
  computed in float64 on the host. tr((S_x S_y)^{1/2}) = sum_i sqrt(lambda_i) where lambda_i
  are the eigenvalues of the symmetric PSD matrix S_x^{1/2} S_y S_x^{1/2} (similar to
  S_x S_y), so two symmetric eigendecompositions replace the general (and, for rank-deficient
  covariances, unstable) `scipy.linalg.sqrtm`.
* KID (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased estimator of the squared
  MMD with the cubic polynomial kernel k(a, b) = (a.b / D + 1)^3, averaged over random subsets
  of `subset_size` rows of each set (without replacement):
    MMD^2_u = 1/(m(m-1)) sum_{i!=j} [k(x_i,x_j) + k(y_i,y_j)] - 2/m^2 sum_{i,j} k(x_i,y_j).
* Inception Score (Salimans et al. 2016): exp(E_y KL(p(c|y) || p(c))), mean and standard
  deviation over `splits` disjoint splits, in float64. With the Inception extractor the
  logits are pool3 @ fc.kernel without the fc bias (1008-way), as in the original code
  (openai/improved-gan) and torch-fidelity / StyleGAN3; see `gen_jax.eval.inception`.
* Precision / recall (Kynkaenniemi et al. 2019): each point's ball reaches its k-th nearest
  neighbour within its own set; precision = fraction of generated points inside some real
  ball, recall = fraction of real points inside some generated ball.
* Density / coverage (Naeem et al. 2020): density = 1/(kM) sum_j #{real balls containing
  y_j}; coverage = fraction of real balls that contain at least one generated point.

The pairwise-distance work of KID and of the k-NN metrics runs in jitted JAX in blocks of
rows; given a mesh, each block is sharded over its devices (the other set replicated).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gen_jax.core import sharding

_HIGHEST = jax.lax.Precision.HIGHEST


# ---------------------------------------------------------------------------------------
# Gaussian statistics and the Frechet distance (host, float64).


class StatsAccumulator:
  """Streams features [B, D] into float64 sums, giving the mean and covariance at the end."""

  def __init__(self, dim: int):
    self.dim = int(dim)
    self.count = 0
    self._sum = np.zeros((self.dim,), np.float64)
    self._outer = np.zeros((self.dim, self.dim), np.float64)

  def add(self, features: np.ndarray) -> None:
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[1] != self.dim:
      raise ValueError(f"Expected features [B, {self.dim}], got shape {f.shape}.")
    self.count += f.shape[0]
    self._sum += f.sum(axis=0)
    self._outer += f.T @ f

  def result(self) -> tuple[np.ndarray, np.ndarray]:
    """(mu [D], sigma [D, D]) in float64; sigma is the unbiased (N - 1) covariance."""
    if self.count < 2:
      raise ValueError(f"A covariance needs at least 2 feature vectors, got {self.count}.")
    mu = self._sum / self.count
    sigma = (self._outer - self.count * np.outer(mu, mu)) / (self.count - 1)
    return mu, 0.5 * (sigma + sigma.T)


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(mu [D], sigma [D, D]) of features [N, D] in float64 (unbiased covariance)."""
  features = np.asarray(features)
  acc = StatsAccumulator(features.shape[-1])
  acc.add(features.reshape(-1, features.shape[-1]))
  return acc.result()


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix (negative eigenvalues from round-off -> 0)."""
  w, v = np.linalg.eigh(sigma)
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
  """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

  Args:
    mu1, mu2: means [D].
    sigma1, sigma2: symmetric PSD covariances [D, D].

  Returns:
    d^2 as a Python float, computed in float64 (clipped at 0 against round-off).
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  d = mu1.shape[-1]
  if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
    raise ValueError(f"Frechet distance needs means [D] and covariances [D, D] of one D; got "
                     f"{mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}.")
  for name, x in (("mu1", mu1), ("sigma1", s1), ("mu2", mu2), ("sigma2", s2)):
    if not np.all(np.isfinite(x)):
      raise ValueError(f"{name} has NaN or infinite entries; the features are broken.")
  s1, s2 = 0.5 * (s1 + s1.T), 0.5 * (s2 + s2.T)
  root1 = _psd_sqrt(s1)
  middle = root1 @ s2 @ root1
  eig = np.linalg.eigvalsh(0.5 * (middle + middle.T))
  tr_covmean = float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))
  diff = mu1 - mu2
  value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
  return max(value, 0.0)


# ---------------------------------------------------------------------------------------
# KID.


def polynomial_kernel(a: jax.Array, b: jax.Array) -> jax.Array:
  """k(a_i, b_j) = (a_i . b_j / D + 1)^3 for a [n, D], b [m, D] -> [n, m]."""
  d = a.shape[-1]
  return (jnp.matmul(a, b.T, precision=_HIGHEST) / d + 1.0) ** 3


def mmd2_unbiased(x: jax.Array, y: jax.Array) -> jax.Array:
  """Unbiased MMD^2 estimate with the cubic polynomial kernel, x and y [m, D] (same m)."""
  m = x.shape[0]
  kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
  within = (jnp.sum(kxx) - jnp.trace(kxx) + jnp.sum(kyy) - jnp.trace(kyy)) / (m * (m - 1))
  return within - 2.0 * jnp.sum(kxy) / (m * m)


def kid(real: np.ndarray, fake: np.ndarray, *, num_subsets: int = 100,
        subset_size: int = 1000, seed: int = 0, subsets_per_call: int = 10) -> tuple[float, float]:
  """Kernel Inception Distance: mean and standard deviation of MMD^2_u over random subsets.

  Args:
    real, fake: features [N, D] and [M, D].
    num_subsets: number of subset pairs.
    subset_size: rows per subset, drawn without replacement; reduced to min(N, M) when
      larger (as clean-fid and torch-fidelity do).
    seed: the subsets' PRNG seed (the result is deterministic).
    subsets_per_call: subsets evaluated per jitted call (memory vs. overhead).

  Returns:
    (mean, std) of the per-subset estimates.
  """
  real = jnp.asarray(real, jnp.float32)
  fake = jnp.asarray(fake, jnp.float32)
  m = min(int(subset_size), real.shape[0], fake.shape[0])
  if m < 2:
    raise ValueError(f"KID needs at least 2 features per set, got {real.shape[0]} and {fake.shape[0]}.")
  values = []
  key = jax.random.key(seed)
  for start in range(0, num_subsets, subsets_per_call):
    count = min(subsets_per_call, num_subsets - start)
    keys = jax.random.split(jax.random.fold_in(key, start), count)
    values.append(np.asarray(_kid_subsets(real, fake, keys, m)))
  values = np.concatenate(values).astype(np.float64)
  return float(values.mean()), float(values.std())


@functools.partial(jax.jit, static_argnums=(3,))
def _kid_subsets(real, fake, keys, m):
  def one(key):
    kx, ky = jax.random.split(key)
    ix = jax.random.permutation(kx, real.shape[0])[:m]
    iy = jax.random.permutation(ky, fake.shape[0])[:m]
    return mmd2_unbiased(real[ix], fake[iy])
  return jax.lax.map(one, keys)


# ---------------------------------------------------------------------------------------
# Inception Score.


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
  """Inception Score from classifier logits [N, K]: (mean, std) over `splits` splits.

  IS = exp(mean_n KL(p(c | x_n) || p(c))), with p(c) the mean prediction within the split.
  """
  logits = np.asarray(logits, np.float64)
  if logits.ndim != 2 or logits.shape[0] < splits:
    raise ValueError(f"Inception Score needs logits [N >= splits={splits}, K], got {logits.shape}.")
  logp = logits - logits.max(axis=1, keepdims=True)
  logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
  scores = []
  for part in np.array_split(logp, splits):
    p = np.exp(part)
    log_marginal = np.log(p.mean(axis=0))
    scores.append(np.exp(np.mean(np.sum(p * (part - log_marginal), axis=1))))
  return float(np.mean(scores)), float(np.std(scores))


# ---------------------------------------------------------------------------------------
# k-NN metrics: precision/recall and density/coverage.


def _sq_dists(a: jax.Array, b: jax.Array) -> jax.Array:
  """Squared Euclidean distances [n, m], clipped at 0."""
  d = (jnp.sum(a * a, axis=1)[:, None] + jnp.sum(b * b, axis=1)[None, :]
       - 2.0 * jnp.matmul(a, b.T, precision=_HIGHEST))
  return jnp.maximum(d, 0.0)


def _kth_radius_block(block, points, k):
  """Squared distance from each row of `block` to its k-th nearest other point of `points`.

  `block` rows are members of `points`, so the nearest one (the point itself, at 0) is
  skipped by taking the (k+1)-th smallest distance.
  """
  neg_top, _ = jax.lax.top_k(-_sq_dists(block, points), k + 1)
  return -neg_top[:, k]


def _ball_block(queries, refs, ref_radii):
  """For each query: how many ref balls contain it; for each ref: its nearest query (squared)."""
  d = _sq_dists(queries, refs)
  inside = d <= ref_radii[None, :]
  return jnp.sum(inside, axis=1), jnp.min(d, axis=0)


class _Blocked:
  """Runs a jitted row-block function over all rows of `rows`, padding the last block."""

  def __init__(self, fn, block_size: int, mesh=None, num_other_args: int = 1):
    self.block_size = block_size
    kwargs = {}
    if mesh is not None:
      n = mesh.devices.size
      self.block_size = max(n, block_size // n * n)
      kwargs = dict(in_shardings=(sharding.batch_sharding(mesh),
                                  *([sharding.replicated(mesh)] * num_other_args)))
    self.fn = jax.jit(fn, **kwargs)

  def __call__(self, rows: np.ndarray, *args):
    outs = []
    b = self.block_size
    for start in range(0, rows.shape[0], b):
      block = rows[start:start + b]
      real = block.shape[0]
      if real < b:
        block = np.concatenate([block, np.repeat(block[-1:], b - real, axis=0)])
      outs.append((jax.device_get(self.fn(block, *args)), real))
    return outs


def knn_radii(points: np.ndarray, k: int, *, block_size: int = 1024, mesh=None) -> np.ndarray:
  """Squared distance [N] of each point to its k-th nearest neighbour in `points` [N, D]."""
  points = np.asarray(points, np.float32)
  if points.shape[0] <= k:
    raise ValueError(f"k-NN radii with k={k} need more than {k} points, got {points.shape[0]}.")
  run = _Blocked(lambda blk, pts: _kth_radius_block(blk, pts, k), block_size, mesh)
  return np.concatenate([r[:n] for r, n in run(points, jnp.asarray(points))])


def _balls(queries: np.ndarray, refs: np.ndarray, ref_radii: np.ndarray, *, block_size: int,
           mesh=None) -> tuple[np.ndarray, np.ndarray]:
  """(count of ref balls containing each query [Q], squared distance of each ref to its
  nearest query [R])."""
  run = _Blocked(_ball_block, block_size, mesh, num_other_args=2)
  counts, nearest = [], np.full((refs.shape[0],), np.inf, np.float32)
  for (c, near), n in run(np.asarray(queries, np.float32), jnp.asarray(refs, jnp.float32),
                          jnp.asarray(ref_radii, jnp.float32)):
    counts.append(c[:n])
    nearest = np.minimum(nearest, near)  # padded rows repeat a real query: harmless for a min
  return np.concatenate(counts), nearest


def precision_recall(real: np.ndarray, fake: np.ndarray, *, k: int = 3, block_size: int = 1024,
                     mesh=None) -> tuple[float, float]:
  """Improved precision and recall (Kynkaenniemi et al. 2019) with k-NN balls.

  Args:
    real, fake: features [N, D] and [M, D].
    k: the ball of each point reaches its k-th nearest neighbour within its own set.
    block_size: query rows per jitted call.
    mesh: optional device mesh over which each block is sharded.

  Returns:
    (precision, recall), each in [0, 1].
  """
  real, fake = np.asarray(real, np.float32), np.asarray(fake, np.float32)
  real_r = knn_radii(real, k, block_size=block_size, mesh=mesh)
  fake_r = knn_radii(fake, k, block_size=block_size, mesh=mesh)
  in_real, _ = _balls(fake, real, real_r, block_size=block_size, mesh=mesh)
  in_fake, _ = _balls(real, fake, fake_r, block_size=block_size, mesh=mesh)
  return float(np.mean(in_real > 0)), float(np.mean(in_fake > 0))


def density_coverage(real: np.ndarray, fake: np.ndarray, *, k: int = 5, block_size: int = 1024,
                     mesh=None) -> tuple[float, float]:
  """Density and coverage (Naeem et al. 2020) with the real points' k-NN balls.

  Returns:
    (density, coverage): density >= 0 (about 1 when fake matches real), coverage in [0, 1].
  """
  real, fake = np.asarray(real, np.float32), np.asarray(fake, np.float32)
  real_r = knn_radii(real, k, block_size=block_size, mesh=mesh)
  counts, nearest = _balls(fake, real, real_r, block_size=block_size, mesh=mesh)
  density = float(np.sum(counts)) / (k * fake.shape[0])
  coverage = float(np.mean(nearest <= real_r))
  return density, coverage


SAMPLE_METRICS = ("fid", "kid", "is", "pr", "dc")


def compute_metrics(names, real: dict[str, Any], fake: dict[str, Any], *, kid_subsets: int = 100,
                    kid_subset_size: int = 1000, is_splits: int = 10, pr_k: int = 3,
                    dc_k: int = 5, mesh=None, seed: int = 0) -> dict[str, float]:
  """The metrics in `names` (subset of SAMPLE_METRICS) from real and fake feature dicts.

  `real` / `fake` hold "mu", "sigma" (float64) and, where needed, "features" [N, D]
  (kid, pr, dc) and for fake "logits" [M, K] (is).

  Returns:
    {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall", "density",
     "coverage"} restricted to what `names` asks for.
  """
  out: dict[str, float] = {}
  unknown = sorted(set(names) - set(SAMPLE_METRICS))
  if unknown:
    raise ValueError(f"Unknown sample metric(s) {unknown}; choose from {list(SAMPLE_METRICS)}.")

  def need(d, key, metric, side):
    if d.get(key) is None:
      raise ValueError(f"Metric {metric!r} needs the {side} {key!r}, which is missing; "
                       + ("reference statistics must be saved with features (recompute them "
                          "with eval.metrics including it)." if side == "reference" else
                          "the feature extractor gives no logits (use 'inception' or "
                          "'classifier')."))
    return d[key]

  if "fid" in names:
    out["fid"] = frechet_distance(need(fake, "mu", "fid", "sample"), fake["sigma"],
                                  need(real, "mu", "fid", "reference"), real["sigma"])
  if "kid" in names:
    out["kid"], out["kid_std"] = kid(need(real, "features", "kid", "reference"),
                                     need(fake, "features", "kid", "sample"),
                                     num_subsets=kid_subsets, subset_size=kid_subset_size,
                                     seed=seed)
  if "is" in names:
    logits = need(fake, "logits", "is", "sample")
    out["is"], out["is_std"] = inception_score(logits, splits=min(is_splits, len(logits)))
  if "pr" in names:
    out["precision"], out["recall"] = precision_recall(
        need(real, "features", "pr", "reference"), need(fake, "features", "pr", "sample"),
        k=pr_k, mesh=mesh)
  if "dc" in names:
    out["density"], out["coverage"] = density_coverage(
        need(real, "features", "dc", "reference"), need(fake, "features", "dc", "sample"),
        k=dc_k, mesh=mesh)
  return {k: float(v) for k, v in out.items()}
