"""The BPE encoder reproduces `tokenizers` exactly; every id maps back to its raw bytes."""

from __future__ import annotations

import lzma
import random

import pytest

from scalinglab.data.tokenizer import ByteTokenizer, _exact_class, _fast_class, load_tokenizer, train_bpe


@pytest.fixture(scope="module")
def bpe(stdlib_texts):
    return train_bpe(stdlib_texts(120), vocab_size=600)


def test_bpe_ids_equal_tokenizers_on_code(bpe, stdlib_texts):
    for text in stdlib_texts(200, max_chars=20000)[120:]:
        assert bpe.encode(text) == bpe._hf.encode(text).ids


@pytest.mark.parametrize("name", ["gutenberg_books_valid.txt.xz", "python311_docs_rst.txt.xz"])
def test_bpe_ids_equal_tokenizers_on_books_and_docs(bpe, shared_file, name):
    with lzma.open(shared_file(name), "rt", encoding="utf-8") as f:
        texts = f.read(400_000).split("\n<|endoftext|>\n")[:-1]
    assert texts
    for text in texts:
        assert bpe.encode(text) == bpe._hf.encode(text).ids


def test_bpe_ids_equal_tokenizers_on_characters_python_classes_differently(bpe):
    # superscripts, fractions, Roman numerals, file separators: Python's \w/\d/\s disagree with \p{L}/\p{N}
    odd = [chr(c) for c in range(0x3000) if _fast_class(chr(c)) != _exact_class(chr(c))]
    assert "²" in odd and "\x1c" in odd and "Ⅷ" in odd
    alphabet = [*" \n\t_'sdl09x.,é日", "\u00a0", "\u2003", *odd]
    rng = random.Random(0)
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        assert bpe.encode(text) == bpe._hf.encode(text).ids, repr(text)


def test_bytes_of_ids_are_the_text(bpe):
    text = "naïve café — 日本語 😀 x²\n\tdef f(a_b): return 'ok'\n"
    ids = bpe.encode(text)
    assert bpe.bytes(ids) == text.encode("utf-8")
    assert bpe.decode(ids) == text
    assert sum(len(bpe.bytes([i])) for i in ids) == len(text.encode("utf-8"))
    assert bpe.decode([bpe.eot_id]) == "<|endoftext|>"


def test_saved_tokenizer_encodes_the_same(bpe, tmp_path):
    bpe.save(tmp_path)
    again = load_tokenizer(tmp_path)
    text = "for i in range(10):\n    print(i ** 2)\n"
    assert again.encode(text) == bpe.encode(text)
    assert again.vocab_size == bpe.vocab_size == 600


def test_byte_tokenizer_is_utf8():
    tok = ByteTokenizer()
    text = "héllo\n"
    assert tok.encode(text) == list(text.encode("utf-8"))
    assert tok.decode(tok.encode(text)) == text
    assert tok.vocab_size == 256


def test_vocab_larger_than_the_text_supports_warns_and_names_the_fix():
    with pytest.warns(UserWarning, match=r"data\.vocab_size"):
        tok = train_bpe(["a tiny corpus, a tiny corpus"], vocab_size=4096)
    assert 257 <= tok.vocab_size < 4096
