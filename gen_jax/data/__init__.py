"""Image data for gen_jax: random-access sources and deterministic, resumable grain pipelines.

    source, info = build_source(cfg.data, "train")       # or digits_source("train"), ...
    it = make_train_iterator(source, global_batch_size=128, seed=0)
    batch = next(it)   # {"image": float32 [128 / n_proc, H, W, C] in [-1, 1], "label": int32}
    state = it.get_state()                               # resume later with it.set_state(state)

See sources.py for the source kinds and pipeline.py for how batches are sharded.
"""

from gen_jax.data.pipeline import build_eval_iterator_from_config
from gen_jax.data.pipeline import build_train_iterator_from_config
from gen_jax.data.pipeline import make_eval_iterator
from gen_jax.data.pipeline import make_train_iterator
from gen_jax.data import pairs  # noqa: F401  (registers the "downsampled" source)
from gen_jax.data.sources import ArraySource
from gen_jax.data.sources import build_source
from gen_jax.data.sources import CorruptDataError
from gen_jax.data.sources import DatasetInfo
from gen_jax.data.sources import DatasetNotPreparedError
from gen_jax.data.sources import digits_source
from gen_jax.data.sources import FolderSource
from gen_jax.data.sources import idx_source
from gen_jax.data.sources import npz_source
from gen_jax.data.sources import read_idx
from gen_jax.data.sources import SOURCES
from gen_jax.data.sources import TfdsSource
from gen_jax.data.sources import UnpairedSource
from gen_jax.data.toy import GaussianMixture
from gen_jax.data.toy import TOY_DISTRIBUTIONS
from gen_jax.data.toy import toy_source
from gen_jax.data.toy import ToyDistribution
from gen_jax.data.toy import ToySource
