"""A tiny random Florence-2 folder in the transformers-native layout, built from a config in code.

The tokenizer is a byte-level BPE with no merges (every byte is a token), so no vocabulary file is needed;
the vision tower has four one-block stages. Random weights: captions are gibberish but deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path

# image_seq_length = (size / 32)^2 + 1: the DaViT tower downsamples 32x and adds one pooled token.
IMAGE_SIZE = 64
IMAGE_TOKENS = (IMAGE_SIZE // 32) ** 2 + 1


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import BartTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials + list(bytes_to_unicode().values()))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return BartTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        sep_token="</s>",
        cls_token="<s>",
        mask_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )


def write_tiny_florence2(folder: Path | str, seed: int = 0) -> Path:
    import torch
    from transformers import (
        BartConfig,
        CLIPImageProcessor,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
    )

    folder = Path(folder)
    tok = _tokenizer()
    image_processor = CLIPImageProcessor(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_center_crop=False,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        image_seq_length=IMAGE_TOKENS,
    )
    text = BartConfig(
        vocab_size=len(tok),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=256,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_bos_token_id=0,
        forced_eos_token_id=2,
        init_std=0.5,
    )
    vision = dict(
        depths=[1, 1, 1, 1],
        embed_dim=[8, 16, 16, 32],
        num_heads=[1, 1, 1, 1],
        num_groups=[1, 1, 1, 1],
        window_size=2,
        projection_dim=32,
        initializer_range=0.5,
    )
    config = Florence2Config(text_config=text.to_dict(), vision_config=vision, image_token_id=tok.image_token_id)
    torch.manual_seed(seed)
    model = Florence2ForConditionalGeneration(config).eval()
    # Readable gibberish: generation may only emit a-z, spaces ("Ġ" in byte-level BPE) and end-of-text.
    vocab = tok.get_vocab()
    allowed = {vocab[c] for c in "abcdefghijklmnopqrstuvwxyzĠ"} | {tok.eos_token_id}
    model.generation_config.suppress_tokens = sorted(set(range(len(tok))) - allowed)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    Florence2Processor(image_processor=image_processor, tokenizer=tok).save_pretrained(folder)
    return folder


def write_remote_code_layout(folder: Path | str) -> Path:
    """Only the config.json of an original microsoft/Florence-2 folder (remote code), to test the refusal."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "florence2",
                "architectures": ["Florence2ForConditionalGeneration"],
                "auto_map": {"AutoConfig": "configuration_florence2.Florence2Config"},
                "vision_config": {"model_type": "davit"},
            }
        )
    )
    return folder
