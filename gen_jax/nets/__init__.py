"""Neural networks (Flax linen), registered by name so configs can choose one.

    net = build_net("unet", **config.model)   # a typo in config.model is a ValueError

Nets take plain keyword arguments and never import ml_collections.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from gen_jax.nets import biggan, gan, stylegan2
from gen_jax.nets.autoencoder_kl import AutoencoderKL
from gen_jax.nets.classifier import ClassifierCNN
from gen_jax.nets.cyclegan import PatchDiscriminator, ResnetGenerator
from gen_jax.nets.flow_conditioners import ConvConditioner, MLPConditioner, ResNetConditioner
from gen_jax.nets.layers import (AttentionBlock, Downsample, ResnetBlock, Upsample,
                                 timestep_embedding)
from gen_jax.nets.mlp import ConditionalMLP
from gen_jax.nets.ncsnpp import NCSNpp
from gen_jax.nets.noisy_classifier import NoisyClassifier
from gen_jax.nets.pixelcnn import GatedPixelCNN, PixelCNN
from gen_jax.nets.pixelcnn_pp import PixelCNNpp
from gen_jax.nets.unet import TinyUNet, UNet, tiny_unet_kwargs
from gen_jax.nets.vae import ConvVAE, MLPVAE
from gen_jax.nets.wavenet import WaveNet
from gen_jax.core import precision
from gen_jax.core.registry import Registry

NETS: Registry[Callable[..., nn.Module]] = Registry("network")
NETS.add("unet", UNet)
NETS.add("mlp", ConditionalMLP)
NETS.add("ncsnpp", NCSNpp)
NETS.add("pixelcnn", PixelCNN)
NETS.add("gated_pixelcnn", GatedPixelCNN)
NETS.add("pixelcnn_pp", PixelCNNpp)
NETS.add("wavenet", WaveNet)
NETS.add("classifier_cnn", ClassifierCNN)
NETS.add("noisy_classifier", NoisyClassifier)
NETS.add("flow_conv", ConvConditioner)
NETS.add("flow_resnet", ResNetConditioner)
NETS.add("flow_mlp", MLPConditioner)
NETS.add("mlp_generator", gan.MLPGenerator)
NETS.add("mlp_discriminator", gan.MLPDiscriminator)
NETS.add("dcgan_generator", gan.DCGANGenerator)
NETS.add("dcgan_discriminator", gan.DCGANDiscriminator)
NETS.add("sngan_generator", gan.SNGANGenerator)
NETS.add("sngan_discriminator", gan.SNGANDiscriminator)
NETS.add("ddgan_mlp", gan.DDGANMLP)
NETS.add("ddgan_unet", gan.DDGANUNet)
NETS.add("vae_mlp", MLPVAE)
NETS.add("vae_conv", ConvVAE)
NETS.add("autoencoder_kl", AutoencoderKL)
NETS.add("cyclegan_resnet_generator", ResnetGenerator)
NETS.add("patchgan_discriminator", PatchDiscriminator)
NETS.add("biggan_generator", biggan.BigGANGenerator)
NETS.add("biggan_discriminator", biggan.BigGANDiscriminator)
NETS.add("biggan_mlp_generator", biggan.BigGANMLPGenerator)
NETS.add("stylegan2_generator", stylegan2.StyleGAN2Generator)
NETS.add("stylegan2_discriminator", stylegan2.StyleGAN2Discriminator)
NETS.add("stylegan2_mlp_generator", stylegan2.StyleGAN2MLPGenerator)
NETS.add("stylegan2_mlp_discriminator", stylegan2.StyleGAN2MLPDiscriminator)


def _field_names(factory: Callable[..., nn.Module]) -> list[str] | None:
  """Constructor keywords of a Module class (or a functools.partial of one); None if unknown."""
  cls = getattr(factory, "func", factory)
  if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
    return None
  return [f.name for f in dataclasses.fields(cls) if f.init and f.name != "parent"]


def build_net(name: str, *, dtype: Any = None, **kwargs: Any) -> nn.Module:
  """Instantiates the network registered as `name` with `kwargs` (e.g. `**config.model`).

  List values (as config systems give them) become tuples, keeping the module hashable.
  `dtype` is the computation dtype (`gen_jax.core.precision.compute_dtype(config)`); None
  or float32 leaves the network's default, a narrower one needs a network with a `dtype`
  field (parameters stay float32 either way).

  Raises:
    KeyError: if `name` is not registered (the message lists the registered names).
    ValueError: if a keyword is not a field of the network; the message names the bad
      keys, the network and its valid fields. Also when `dtype` is narrower than float32
      and the network has no `dtype` field.
  """
  factory = NETS.get(name)
  valid = _field_names(factory)
  if dtype is not None and precision.is_reduced(dtype):
    if valid is None or "dtype" not in valid:
      raise ValueError(
          f"Network {name!r} computes in float32 only; it does not support "
          f"config.precision={jnp.dtype(dtype).name!r}. Set config.precision='fp32'.")
    kwargs["dtype"] = dtype
  if valid is not None:
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
      raise ValueError(
          f"Unknown keyword(s) {', '.join(map(repr, unknown))} for network {name!r}; valid "
          f"fields are: {', '.join(valid)}.")
  # Config systems hand sequences over as lists; Flax modules must be hashable.
  kwargs = {key: tuple(value) if isinstance(value, list) else value
            for key, value in kwargs.items()}
  return factory(**kwargs)


__all__ = [
    "AttentionBlock", "ConditionalMLP", "Downsample", "NCSNpp", "NETS", "ResnetBlock",
    "TinyUNet", "UNet", "Upsample",
    "build_net", "tiny_unet_kwargs", "timestep_embedding",
]
