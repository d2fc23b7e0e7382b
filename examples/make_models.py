"""Make the models the default job (matrix/edge.yaml) measures besides the built-in and
torchvision ones, as a user would bring them: nothing is downloaded.

    .venv/bin/python examples/make_models.py matrix/models

- tiny-bert/: a BERT-style encoder (4 layers, hidden 128, 4 heads, vocabulary 8000, 3
  labels), a transformers folder made from a config with seeded random weights
  (save_pretrained), for `hf:models/tiny-bert`;
- digits_cnn.onnx: the built-in digits CNN, trained, exported to an ONNX file with a
  dynamic batch, for `onnx:models/digits_cnn.onnx`;
- speech_kws.onnx: a streaming keyword model with three inputs, `features` [batch, frames,
  40] float32 (frames dynamic), `sample_rate` [] int64 (a scalar, no batch axis) and
  `state` [2, batch, 64] float32 (a recurrent state: the batch is its second axis), and two
  outputs (logits per frame, the next state), for `onnx:models/speech_kws.onnx`;
- silero_vad.onnx: Silero VAD (MIT licence), a trained streaming voice-activity detector
  with the same kind of inputs (`input` [batch, sequence] audio, `state` [2, batch, 128],
  `sr` [] int64), copied from the silero-vad package, which ships it: real weights, so its
  fidelity figures mean something. For `onnx:models/silero_vad.onnx`.

Existing files are kept (delete them to make them again)."""

from __future__ import annotations

import sys
from pathlib import Path

SEED = 0


def make_tiny_bert(folder: Path, *, layers: int = 4, hidden: int = 128, heads: int = 4,
                   vocab: int = 8000, labels: int = 3, max_positions: int = 512) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    if (folder / "config.json").is_file():
        return folder
    config = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=4 * hidden,
                        max_position_embeddings=max_positions, num_labels=labels)
    torch.manual_seed(SEED)
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    return folder


def make_speech_kws(path: Path) -> Path:
    import torch
    from torch import nn

    if path.is_file():
        return path

    class SpeechKWS(nn.Module):
        """Per-frame keyword logits from audio features, conditioned on a recurrent state
        it also updates. A convolution over frames, not an nn.GRU: the dynamo exporter
        unrolls a GRU over the example's frames, which would fix that axis in the file."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(40, 64, kernel_size=3, padding=1)
            self.from_state = nn.Linear(64, 64)
            self.head = nn.Linear(64, 10)

        def forward(self, features, sample_rate, state):
            # features: [batch, frames, 40]; sample_rate: [] int64; state: [2, batch, 64]
            scale = sample_rate.to(features.dtype) / 16000.0
            hidden = torch.relu(self.conv((features * scale).transpose(1, 2))).transpose(1, 2)
            hidden = hidden + self.from_state(state.mean(0)).unsqueeze(1)
            next_state = torch.tanh(state + hidden.mean(1).unsqueeze(0))
            return self.head(hidden), next_state

    torch.manual_seed(SEED)
    model = SpeechKWS().eval()
    batch, frames = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("frames",
                                                                                  min=3, max=4096)
    example = (torch.randn(2, 50, 40), torch.tensor(16000, dtype=torch.int64),
               torch.zeros(2, 2, 64))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, example, str(path), dynamo=True, opset_version=18,
                      external_data=False, input_names=["features", "sample_rate", "state"],
                      output_names=["logits", "next_state"],
                      dynamic_shapes=({0: batch, 1: frames}, None, {1: batch}))
    return path


def make_digits_onnx(path: Path, cache: Path) -> Path:
    import torch

    from harness.models.digits_cnn import load_builtin

    if path.is_file():
        return path
    model, shape, _ = load_builtin("digits_cnn", cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model.eval(), (torch.zeros(2, *shape),), str(path), dynamo=True,
                      opset_version=18, external_data=False, input_names=["input"],
                      output_names=["logits"],
                      dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
    return path


VAD_FILE = "silero_vad_16k_op15.onnx"  # the 16 kHz graph, opset 15, dynamic batch


def copy_silero_vad(path: Path) -> Path:
    from importlib import resources

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes((resources.files("silero_vad") / "data" / VAD_FILE).read_bytes())
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None, cache: Path | None = None) -> int:
    import logging

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    folder = Path((argv or sys.argv[1:] or ["matrix/models"])[0])
    # the digits CNN trains once into the harness's default artifact cache
    cache = cache or Path(__file__).resolve().parents[1] / "results" / "cache"
    made = [make_tiny_bert(folder / "tiny-bert"), make_digits_onnx(folder / "digits_cnn.onnx",
                                                                   cache),
            make_speech_kws(folder / "speech_kws.onnx"),
            copy_silero_vad(folder / "silero_vad.onnx")]
    for path in made:
        print(f"ready: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
