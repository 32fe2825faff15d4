"""Audio sources: WAV folders (decoded, mono, resampled, cut) and the embedded tones."""

import wave

import numpy as np
import pytest

from gen_jax.data import audio, build_source, make_train_iterator


def _write_wav(path, signal, rate, width=2, channels=1):
  path.parent.mkdir(parents=True, exist_ok=True)
  data = np.repeat(np.asarray(signal)[:, None], channels, axis=1)
  if width == 2:
    raw = np.round(data * 32767).astype("<i2").tobytes()
  elif width == 1:
    raw = np.round(data * 127 + 128).astype(np.uint8).tobytes()
  else:
    v = np.round(data * (2 ** 23 - 1)).astype(np.int32).reshape(-1)
    raw = np.stack([v & 255, (v >> 8) & 255, (v >> 16) & 255], -1).astype(np.uint8).tobytes()
  with wave.open(str(path), "wb") as f:
    f.setnchannels(channels)
    f.setsampwidth(width)
    f.setframerate(rate)
    f.writeframes(raw)


def _sine(freq, rate, seconds):
  return 0.5 * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)


@pytest.mark.parametrize("width", [1, 2, 3])
def test_read_wav_decodes_pcm_and_averages_channels(tmp_path, width):
  x = _sine(440, 8000, 0.1)
  _write_wav(tmp_path / "a.wav", x, 8000, width=width, channels=2)
  y, rate = audio.read_wav(tmp_path / "a.wav")
  assert rate == 8000 and y.shape == x.shape
  np.testing.assert_allclose(y, x, atol=2.0 / 2 ** (8 * width - 1) + 1e-6)


def test_audio_folder_resamples_and_cuts_labelled_clips(tmp_path):
  _write_wav(tmp_path / "train" / "low" / "a.wav", _sine(300, 22050, 0.5), 22050)
  _write_wav(tmp_path / "train" / "high" / "b.wav", _sine(1000, 16000, 0.25), 16000)
  cfg = dict(source="audio_folder", path=str(tmp_path / "train"), sample_rate=8000,
             clip_length=500, clip_hop=0)
  source, info = build_source(cfg, "train")
  # 0.5 s and 0.25 s at 8 kHz: 4000 and 2000 samples -> 8 + 4 clips of 500.
  assert info.image_shape == (500, 1) and info.num_classes == 2 and len(source) == 12
  labels = [int(source[i]["label"]) for i in range(len(source))]
  assert labels == [0] * 4 + [1] * 8  # classes sorted by name: high=0, low=1
  clip = source[6]["image"]  # "low": 300 Hz
  assert clip.dtype == np.float32
  spectrum = np.abs(np.fft.rfft(clip[:, 0]))
  assert np.argmax(spectrum) * 8000 / 500 == pytest.approx(300, abs=16)
  batch = next(make_train_iterator(source, global_batch_size=4, seed=0, process_index=0,
                                   process_count=1, num_threads=0))
  assert batch["image"].shape == (4, 500, 1) and batch["image"].dtype == np.float32


def test_audio_folder_errors_name_the_problem(tmp_path):
  with pytest.raises(ValueError, match="needs data.path"):
    build_source(dict(source="audio_folder", path=""), "train")
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="no .wav files"):
    build_source(dict(source="audio_folder", path=str(tmp_path / "empty")), "train")
  _write_wav(tmp_path / "short" / "a.wav", _sine(300, 8000, 0.01), 8000)
  with pytest.raises(ValueError, match="lower data.clip_length"):
    build_source(dict(source="audio_folder", path=str(tmp_path / "short"), sample_rate=8000,
                      clip_length=1000), "train")


def test_tones_are_deterministic_labelled_and_split():
  a = audio.tones_source("train", clip_length=128, num_examples=8)
  b = audio.tones_source("train", clip_length=128, num_examples=8)
  e = audio.tones_source("eval", clip_length=128, num_examples=8)
  for i in range(8):
    np.testing.assert_array_equal(a[i]["image"], b[i]["image"])
    assert int(a[i]["label"]) == i % 4
  assert not np.allclose(a[0]["image"], e[0]["image"])
  assert a.info.image_shape == (128, 1) and a.info.num_classes == 4
  assert np.abs(a[1]["image"]).max() <= 1.0
