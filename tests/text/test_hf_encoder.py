"""Any Hugging Face model as the text encoder, offline: tiny randomly initialised decoder (Qwen2, GPT-2) and
encoder (BERT) models with a word-level tokenizer, built in temporary folders; nothing is downloaded."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from tsmoe.errors import ConfigError
from tsmoe.estimator import Estimator
from tsmoe.text import EmbeddingCache, get_encoder

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

CORPUS = [
    "flu cases rose sharply this week in the northern states",
    "energy prices fell as demand eased and gas storage grew",
    "no unusual events were reported for the period",
    "the report notes a steady trend with mild seasonal swings",
]


def tiny_tokenizer(folder, family: str) -> int:
    """A tokenizer of the kind ``family`` reads (byte-level BPE for the decoders, WordPiece for BERT),
    trained on :data:`CORPUS` and saved in ``folder``; returns its vocabulary size."""
    from tokenizers import BertWordPieceTokenizer, ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    if family == "bert":
        trained = BertWordPieceTokenizer()
        trained.train_from_iterator(CORPUS, vocab_size=200, min_frequency=1)
        special = {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]"}
    else:
        trained = ByteLevelBPETokenizer()
        trained.train_from_iterator(CORPUS, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"])
        special = {"eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    PreTrainedTokenizerFast(tokenizer_object=trained._tokenizer, **special).save_pretrained(folder)
    return trained.get_vocab_size()


def tiny_model(folder, family: str, seed: int = 0):
    """A random ``family`` model (hidden size 32, 2 layers) and its tokenizer, saved in ``folder``."""
    vocab = tiny_tokenizer(folder, family)
    config = {
        "qwen2": lambda: transformers.Qwen2Config(
            vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128,
        ),
        "gpt2": lambda: transformers.GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=128),
        "bert": lambda: transformers.BertConfig(
            vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=128,
        ),
    }[family]()  # fmt: skip
    torch.manual_seed(seed)
    transformers.AutoModel.from_config(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("models") / "tiny-qwen2", "qwen2")


@pytest.mark.parametrize("family", ["qwen2", "gpt2", "bert"])
def test_decoder_and_encoder_models_give_token_states_and_a_unit_pooled_vector(tmp_path, family):
    encoder = get_encoder("hf", model=str(tiny_model(tmp_path / family, family)))
    first, null = encoder.encode([CORPUS[0], None])
    assert encoder.dim == 32 and first.tokens.shape[1] == 32 and first.tokens.shape[0] >= 10
    assert first.tokens.dtype == np.float32 and np.isfinite(first.tokens).all()
    assert np.linalg.norm(first.pooled) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(first.pooled, first.tokens.mean(0) / np.linalg.norm(first.tokens.mean(0)), atol=1e-5)
    assert null.tokens.shape == (0, 32) and not null.pooled.any()


def test_pooling_the_last_token_and_reading_an_earlier_layer(qwen):
    text = CORPUS[1]
    (last,) = get_encoder("hf", model=str(qwen), pooling="last").encode([text])
    np.testing.assert_allclose(last.pooled, last.tokens[-1] / np.linalg.norm(last.tokens[-1]), atol=1e-5)
    (embedded,) = get_encoder("hf", model=str(qwen), layer=0).encode([text])
    assert embedded.tokens.shape == last.tokens.shape and not np.allclose(embedded.tokens, last.tokens)
    with pytest.raises(ConfigError, match="text_layer 5 is outside the model's layers"):
        get_encoder("hf", model=str(qwen), layer=5)


def test_a_texts_states_do_not_depend_on_the_texts_encoded_beside_it(qwen):
    encoder = get_encoder("hf", model=str(qwen), batch_size=3)
    together = encoder.encode(CORPUS + ["flu cases rose"])
    for text, batched in zip(CORPUS, together, strict=False):
        (alone,) = encoder.encode([text])
        np.testing.assert_allclose(batched.tokens, alone.tokens, atol=1e-6, rtol=0)


def test_long_texts_are_cut_with_a_warning(qwen, caplog):
    (cut,) = get_encoder("hf", model=str(qwen), max_tokens=4).encode([CORPUS[0]])
    assert cut.tokens.shape[0] == 4 and "truncated to the first 4" in caplog.text


def test_the_cache_keys_on_the_weights_not_the_folders_name(tmp_path, qwen):
    copy = shutil.copytree(qwen, tmp_path / "elsewhere")
    assert get_encoder("hf", model=str(copy)).name == get_encoder("hf", model=str(qwen)).name
    other = tiny_model(tmp_path / "tiny-qwen2", "qwen2", seed=1)  # the same name and config, other weights
    assert get_encoder("hf", model=str(other)).name != get_encoder("hf", model=str(qwen)).name
    cache = EmbeddingCache(get_encoder("hf", model=str(qwen)), tmp_path / "cache")
    first = cache.encode(CORPUS[:2])
    again = EmbeddingCache(get_encoder("hf", model=str(copy)), tmp_path / "cache")
    second = again.encode(CORPUS[:2])
    assert (cache.misses, again.hits, again.misses) == (2, 2, 0)
    np.testing.assert_array_equal(first[0].tokens, second[0].tokens)
    fresh = EmbeddingCache(get_encoder("hf", model=str(other)), tmp_path / "cache")
    fresh.encode(CORPUS[:2])
    assert fresh.misses == 2


def test_a_model_id_is_read_from_the_local_hub_cache_and_never_downloaded(tmp_path, qwen, monkeypatch):
    from huggingface_hub import constants

    hub = tmp_path / "hub"
    snapshot = hub / "models--someone--tiny-qwen2" / "snapshots" / "0123abcd"
    shutil.copytree(qwen, snapshot)
    (hub / "models--someone--tiny-qwen2" / "refs").mkdir()
    (hub / "models--someone--tiny-qwen2" / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cached = get_encoder("hf", model="someone/tiny-qwen2")
    assert cached.folder == snapshot and cached.name == get_encoder("hf", model=str(qwen)).name
    with pytest.raises(ConfigError, match="neither a local folder nor a model in the local Hugging Face cache"):
        get_encoder("hf", model="someone/not-downloaded")


def test_mome_trains_an_epoch_with_a_decoder_as_its_text_encoder(tmp_path, qwen):
    run = tmp_path / "run"
    data = {"domain": "SocialGood", "text_encoder": "hf", "text_model": str(qwen), "text_pooling": "last"}
    fitted = Estimator(
        "mome", "mome_timemmd", model_params={"d_model": 16, "patch_len": 4}, data_params=data,
        training={"max_epochs": 1, "batch_size": 64}, trainer={"accelerator": "cpu"},
    ).fit(run_dir=run)  # fmt: skip
    assert np.isfinite(fitted.metrics_["mse"])
    cache = EmbeddingCache(get_encoder("hf", model=str(qwen), pooling="last"))  # the tests' cache folder
    assert len(list(cache.folder.rglob("*.npz"))) > 10
    forecast = Estimator.load(run).predict()
    assert forecast.shape[0] > 0 and np.isfinite(forecast).all()


def test_a_run_refuses_to_read_text_with_other_weights_than_it_was_trained_with(tmp_path, qwen):
    model = shutil.copytree(qwen, tmp_path / "model")
    run = tmp_path / "run"
    data = {"domain": "SocialGood", "text_encoder": "hf", "text_model": str(model)}
    Estimator(
        "mome", "mome_timemmd", model_params={"d_model": 16, "patch_len": 4}, data_params=data,
        training={"max_epochs": 1, "batch_size": 64}, trainer={"accelerator": "cpu"},
    ).fit(run_dir=run)  # fmt: skip
    assert Estimator.load(run).meta_["text_encoder"].startswith("hf-")
    tiny_model(model, "qwen2", seed=1)  # the folder now holds other weights
    with pytest.raises(ConfigError, match="the run was trained with 'hf-"):
        Estimator.load(run).predict()
