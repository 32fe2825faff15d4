"""Audio sources: fixed-length mono clips {"image": float32 [T, 1] in [-1, 1], "label"}.

The key stays "image" so that the engine's batches, shardings and pipelines serve audio
unchanged; the values are already in model space (float), so the pipeline neither
dequantizes nor flips them.

  audio_folder  WAV files `<path>/<class>/<file>.wav` (or `<path>/<file>.wav`, unlabelled),
                read with the standard `wave` module (PCM 8/16/24/32-bit, any channel count;
                channels are averaged to mono), resampled to `data.sample_rate` with
                scipy.signal.resample_poly (polyphase, anti-aliased) and cut into clips of
                `data.clip_length` samples every `data.clip_hop` samples (0: no overlap).
                Files are decoded once when the source is built and held in memory as
                float32 (16 kHz: about 230 MB per hour of audio).
  audio_tones   the embedded default: a synthetic family of periodic tones computed
                deterministically from (split, index), so it needs no download and no file
                and has an exactly known structure for tests. Four classes of waveform
                (0 sine, 1 square, 2 sawtooth, 3 triangle) at a fundamental drawn from the
                25 semitones 220-880 Hz, amplitude 0.3-0.9, random phase, plus Gaussian
                noise of standard deviation 0.001. "train" has 4,096 clips, "eval" 512, from
                disjoint seeds.
"""

from __future__ import annotations

import logging
import math
import os
import pathlib
import wave
from typing import Any

import numpy as np

from gen_jax.data import sources

AUDIO_EXTENSIONS = (".wav",)
TONE_CLASSES = ("sine", "square", "sawtooth", "triangle")
TONES_NUM_EXAMPLES = {"train": 4096, "eval": 512}


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
  """(float32 mono [N] in [-1, 1], sample rate) of a PCM WAV file."""
  with wave.open(str(path), "rb") as f:
    width, channels, rate = f.getsampwidth(), f.getnchannels(), f.getframerate()
    raw = f.readframes(f.getnframes())
  if width == 1:
    data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
  elif width == 2:
    data = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
  elif width == 3:
    b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
    v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    data = (np.where(v >= 1 << 23, v - (1 << 24), v)).astype(np.float32) / float(1 << 23)
  elif width == 4:
    data = np.frombuffer(raw, "<i4").astype(np.float32) / float(1 << 31)
  else:
    raise ValueError(f"{path}: unsupported sample width of {width} bytes (PCM 8/16/24/32-bit).")
  return data.reshape(-1, channels).mean(axis=1).astype(np.float32), rate


def resample(signal: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
  """The signal at `target_rate` (scipy.signal.resample_poly), float32."""
  if rate == target_rate:
    return signal.astype(np.float32)
  from scipy import signal as sps  # pylint: disable=g-import-not-at-top
  g = math.gcd(int(rate), int(target_rate))
  return sps.resample_poly(signal, target_rate // g, rate // g).astype(np.float32)


class ClipSource:
  """Fixed-length clips cut from in-memory signals.

  Args:
    signals: float32 mono signals at one sample rate.
    labels: one label per signal.
    clip_length: T, samples per clip.
    hop: samples between clip starts within a signal (default T: no overlap).
    num_classes: for the DatasetInfo.
  """

  def __init__(self, signals: list[np.ndarray], labels: list[int], *, clip_length: int,
               hop: int | None = None, num_classes: int = 0, what: str = "audio"):
    if clip_length < 2:
      raise ValueError(f"data.clip_length must be at least 2 samples, got {clip_length}.")
    hop = hop or clip_length
    self._signals = [np.clip(s, -1.0, 1.0).astype(np.float32) for s in signals]
    self._labels = labels
    self._index = [(i, start) for i, s in enumerate(self._signals)
                   for start in range(0, len(s) - clip_length + 1, hop)]
    if not self._index:
      longest = max((len(s) for s in self._signals), default=0)
      raise ValueError(f"No clip of {clip_length} samples fits in {what} (the longest signal "
                       f"has {longest} samples); lower data.clip_length.")
    self._clip_length = clip_length
    self.info = sources.DatasetInfo((clip_length, 1), int(num_classes), len(self._index))

  def __len__(self) -> int:
    return len(self._index)

  def __getitem__(self, index: int) -> dict[str, Any]:
    i, start = self._index[index]
    clip = self._signals[i][start:start + self._clip_length, None]
    return {"image": clip, "label": np.int32(self._labels[i])}

  def __repr__(self) -> str:
    return f"ClipSource({self.info})"


def _list_wavs(root: pathlib.Path) -> tuple[list[pathlib.Path], list[int], list[str]]:
  def wavs(folder):
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
                  and not p.name.startswith("."))
  classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
  files, labels = [], []
  for label, name in enumerate(classes):
    found = wavs(root / name)
    files += found
    labels += [label] * len(found)
  direct = wavs(root)
  if classes and direct:
    raise ValueError(f"{root} holds both class subfolders and WAV files ({direct[0].name}); "
                     "put every file inside a class folder.")
  if not classes:
    files, labels = direct, [0] * len(direct)
  if not files:
    raise ValueError(f"Audio folder {str(root)!r} has no .wav files (expected "
                     "<path>/<class>/<file>.wav or <path>/<file>.wav).")
  return files, labels, classes


def audio_folder_source(root: str | os.PathLike, *, sample_rate: int, clip_length: int,
                        hop: int | None = None) -> ClipSource:
  """Clips of every WAV file under `root` (see the module docstring)."""
  root = pathlib.Path(root).expanduser()
  if not root.is_dir():
    raise FileNotFoundError(f"Audio folder {str(root)!r} does not exist or is not a folder.")
  files, labels, classes = _list_wavs(root)
  signals = []
  for path in files:
    try:
      signal, rate = read_wav(path)
    except (wave.Error, EOFError) as error:
      raise ValueError(f"{path} is not a readable PCM WAV file: {error}") from error
    signals.append(resample(signal, rate, sample_rate))
  short = [str(f) for f, s in zip(files, signals) if len(s) < clip_length]
  if short:
    logging.warning("%d of %d audio files are shorter than %d samples and give no clip "
                    "(e.g. %s).", len(short), len(files), clip_length, short[0])
  return ClipSource(signals, labels, clip_length=clip_length, hop=hop,
                    num_classes=len(classes), what=f"the files of {str(root)!r}")


def tone(kind: int, frequency: float, amplitude: float, phase: float, length: int,
         sample_rate: int) -> np.ndarray:
  """One periodic waveform of class `kind` (index into TONE_CLASSES), float64 [length]."""
  cycles = frequency * np.arange(length) / sample_rate + phase  # in periods
  frac = cycles - np.floor(cycles)
  wave_ = [np.sin(2 * np.pi * cycles), np.where(frac < 0.5, 1.0, -1.0), 2.0 * frac - 1.0,
           1.0 - 4.0 * np.abs(frac - 0.5)][kind]
  return amplitude * wave_


def tones_source(split: str, *, sample_rate: int = 8000, clip_length: int = 1024,
                 num_examples: int | None = None) -> ClipSource:
  """The embedded synthetic tones (see the module docstring); deterministic per index."""
  if split not in TONES_NUM_EXAMPLES:
    raise ValueError(f"The audio_tones source has splits 'train' and 'eval', not {split!r}.")
  n = num_examples or TONES_NUM_EXAMPLES[split]
  split_seed = 0 if split == "train" else 1
  signals, labels = [], []
  for i in range(n):
    rng = np.random.default_rng([split_seed, i])
    kind = i % len(TONE_CLASSES)
    frequency = 220.0 * 2.0 ** (rng.integers(0, 25) / 12.0)
    x = tone(kind, frequency, rng.uniform(0.3, 0.9), rng.uniform(), clip_length, sample_rate)
    signals.append((x + 0.001 * rng.standard_normal(clip_length)).astype(np.float32))
    labels.append(kind)
  return ClipSource(signals, labels, clip_length=clip_length, num_classes=len(TONE_CLASSES),
                    what="the tones")


def _audio_fields(cfg: Any) -> tuple[int, int, int]:
  get = sources.get_field
  for field in ("image_size", "random_flip", "dequantize"):
    if get(cfg, field):
      raise ValueError(f"data.{field} applies to images; unset it for audio "
                       f"(data.source={get(cfg, 'source')!r}).")
  return int(get(cfg, "sample_rate", 16000)), int(get(cfg, "clip_length", 1024)), int(
      get(cfg, "clip_hop", 0))


def audio_folder_from_config(cfg: Any, split: str) -> ClipSource:
  """data.path / data.eval_path, data.sample_rate, data.clip_length, data.clip_hop."""
  rate, length, hop = _audio_fields(cfg)
  field = "path" if split == "train" else "eval_path"
  path = sources.get_field(cfg, field)
  if not path:
    raise ValueError(f"data.source='audio_folder' needs data.{field}: the folder of WAV "
                     f"files of the {split} split.")
  return audio_folder_source(path, sample_rate=rate, clip_length=length, hop=hop or None)


def tones_from_config(cfg: Any, split: str) -> ClipSource:
  """data.sample_rate and data.clip_length of the embedded tones."""
  rate, length, _ = _audio_fields(cfg)
  return tones_source("train" if split == "train" else "eval", sample_rate=rate,
                      clip_length=length)
