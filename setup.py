"""Install gen_jax: `pip install -e .` (library) or `pip install -e '.[test]'` (with tests)."""

import pathlib
import re

import setuptools

_HERE = pathlib.Path(__file__).parent
_VERSION = re.search(r'__version__ = "([^"]+)"', (_HERE / "gen_jax" / "__init__.py").read_text()).group(1)

# Lower bounds are the versions the test suite was run with (Python 3.11, CPU).
_REQUIRES = [
    "jax>=0.10.2",
    "flax>=0.12.8",
    "optax>=0.2.8",
    "orbax-checkpoint>=0.12.8",
    "grain>=0.2.18",
    "tensorflow-datasets>=4.9.10",
    "importlib_resources>=6.0",  # imported by tensorflow-datasets but not declared by it
    "clu>=0.0.12",
    "ml-collections>=1.1.0",
    # clu's metric writers import tensorflow and write through tensorboard.
    "tensorflow-cpu>=2.21",
    "tensorboard>=2.21",
    "numpy>=2.0",
    "Pillow>=10.0",
    "scikit-learn>=1.5",  # ships the embedded default dataset (8x8 handwritten digits)
    "safetensors>=0.8.0",  # reads published diffusers weights (gen_jax.tools.import_diffusers)
]

setuptools.setup(
    name="gen_jax",
    version=_VERSION,
    description=("Generative models in JAX: DDPM/DDIM, score SDEs, GANs, normalizing flows and "
                 "autoregressive models on one engine."),
    long_description=(_HERE / "README.md").read_text() if (_HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["gen_jax", "gen_jax.*", "configs", "configs.*"]),
    python_requires=">=3.11",
    install_requires=_REQUIRES,
    extras_require={
        "test": ["pytest>=8.0", "pytest-xdist>=3.5"],
        "wandb": ["wandb>=0.31"],  # config.trainer.writers=("tensorboard", "wandb")
        # experiments/bench/vs_pytorch.py: the same models in PyTorch (CPU build), pinned so
        # that the recorded ratios can be reproduced.
        "bench": ["torch==2.13.0", "diffusers==0.42.1"],
    },
)
