"""The C++ tokenizer (cpp/include/fastspec/tokenizer.h, bound as fastspec._core.CppTokenizer) against
the Python tokenizer (fastspec.Tokenizer: Hugging Face `tokenizers` built from the GGUF metadata):
ids, token bytes, decoding and streaming equal, on the real models and on tiny GGUF vocabularies
made here; its pre-tokenizer matcher against tokenizers' regex splits for every supported
`tokenizer.ggml.pre`; its Unicode tables against Python's unicodedata."""
import inspect as _inspect
import os
import random

import numpy as np
import pytest

import fastspec
from fastspec import _core
from fastspec.tokenizer import Tokenizer

gguf = pytest.importorskip("gguf")
tokenizers = pytest.importorskip("tokenizers")
from tokenizers import Regex, pre_tokenizers  # noqa: E402

from fastspec import tokenizer_load  # noqa: E402
from tiny_models import add_tokenizer, bytes_to_unicode, tiny_tokenizer  # noqa: E402

TEXTS = [
    "",
    " ",
    "     ",
    "\n",
    "\t",
    "\r\n",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog. It wasn't me, they're sure; we've all said I'd go.",
    "I'm you'll DON'T we've SHE'S IT'LL THEY'RE 'tis o'clock ''s",
    "héllo café naïve Ångström Øre straße Ærø œuvre Ĳssel",
    "日本語のテキスト、中文字符。한국어 텍스트",
    "مرحبا بالعالم، كيف حالك؟ שלום עולם",
    "emoji 😀👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷 ❤️ 🧌🫠",
    "def f(x):\n    if x:\n\treturn x  # tab\n\n\n    return None\n",
    "class A:\n    def __init__(self):\n        self.x = {'k': [1, 2]}\n\n\n\n        pass\n",
    "a   b\t\tc\n\n\nd \n \n   \n\n  x",
    "   leading", "trailing   ",
    "12345 3.14159 1,000,000 year  2024\t\t12 31415926535897932384626433832795028841971",
    "x =  42\r\n\t\t7   0 -5 +6 1e-10 0x1F ٣٤٥ ²³ Ⅻ ½",
    "punctuation!!! ??? ... --- ((())) [[x]] {{y}} <<z>> @#$%^&*_+=|\\~`",
    "\u00a0nbsp\u3000ideographic\u200bzero-width\u2028line\u2029para\x85nel\x0bvt\x0cff\x1cfs",
    "<0x41> looks like a byte token",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n<eos>",
    "<bos><eos><pad><|endoftext|>x<|endoftext|><|im_start|><|im_start|>",
    "<table><tr><td>cell</td></tr></table> <h3>Title</h3> <code>x</code>",
    "ſt 'ſ 'S 'K K",
    "combining: e\u0301 a\u0308 \u0915\u093f \u20dd\u0903 Ǆ ǅ ǆ ʰʲ",
    "▁leading meta ▁▁ two ▁",
]



def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


SAMPLE = _read(os.path.join(os.path.dirname(fastspec.__file__), "data", "calibration.txt"))
STDLIB = _read(_inspect.__file__)  # Python's inspect.py: code, docstrings


def random_texts(n, seed=0):
    """Random strings from a pool of characters of every class the pre-tokenizers tell apart."""
    rng = random.Random(seed)
    pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 3
            + list("'\".,;:!?-_/\\()[]{}<>@#$%^&*+=|~`") * 2
            + [" "] * 20 + ["\t", "\n", "\n", "\r", "\x0b", "\x0c", "\x85", "\xa0", "\u2028", "\u3000",
                            "\u200b", "\x1c", "\u180e"]
            + list("éßЖжǅʰ中文字ا한ſKİ") + ["\u0301", "\u0903", "\u20dd"] + list("٣Ⅻ²½€©😀🧌")
            + ["👍🏽", "\u200d", "'s", "'T", "'re", "'VE", "'ll", "'D", "'M", "'ſ", "   ", "\n\n", " \n ",
               "<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>", "<eos>", "<bos>",
               "<|endoftext|>", "<table>", "\n\n\n", "\u2581", "<0x41>"])
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 40))) for _ in range(n)]


def random_codepoint_texts(n, seed=0):
    """Random strings of arbitrary code points (assigned or not, every plane; no surrogates)."""
    rng = random.Random(seed)
    spans = [(0x20, 0x7F)] * 3 + [(0x80, 0x3000)] * 3 + [(0x3000, 0xD800), (0xE000, 0x10000)] + [(0x10000, 0x110000)] * 2
    return ["".join(chr(rng.randrange(*rng.choice(spans))) for _ in range(rng.randint(1, 30))) for _ in range(n)]


RANDOM = random_texts(300) + random_codepoint_texts(100)


def _stream(dec, ids):
    return [dec.push(i) for i in ids], dec.flush()


def check_same_tokenizer(cpp, py, texts):
    """Every observable of the two tokenizers agrees."""
    assert cpp.vocab_size == py.vocab_size
    assert (cpp.bos_id, cpp.eos_id, cpp.add_bos, cpp.add_eos) == (py.bos_id, py.eos_id, py.add_bos, py.add_eos)
    assert cpp.eog_ids == py.eos_ids
    for s in texts:
        ids = py.encode(s)
        assert cpp.encode(s) == ids, s
        assert cpp.encode(s, add_special=False) == py.encode(s, add_special=False), s
        assert cpp.decode(ids) == py.decode(ids), s
        assert cpp.decode(ids, skip_special=True) == py.decode(ids, skip_special=True), s
    for i in range(py.vocab_size):
        assert cpp.token_bytes(i) == py.token_bytes(i), i
        assert cpp.token_text(i) == py.token_text(i), i
        assert cpp.is_special(i) == py.is_special(i), i


# ---- the real models -----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["smollm2", "gemma3"])
def pair(request):
    path = request.getfixturevalue("smollm2_path" if request.param == "smollm2" else "gemma3_path")
    return _core.CppTokenizer(str(path)), Tokenizer.from_model(path), str(path)


@pytest.mark.real_model
def test_real_encode_matches_python(pair):
    cpp, py, _ = pair
    for s in TEXTS + RANDOM:
        assert cpp.encode(s) == py.encode(s), s
        assert cpp.encode(s, add_special=False) == py.encode(s, add_special=False), s


@pytest.mark.real_model
def test_real_encode_large_samples(pair):
    cpp, py, _ = pair
    for text in (SAMPLE, STDLIB, SAMPLE[:5000] * 3 + STDLIB[:20000]):
        ours, ref = cpp.encode(text), py.encode(text)
        assert len(ours) == len(ref)
        assert [k for k, (a, b) in enumerate(zip(ours, ref)) if a != b][:5] == []


@pytest.mark.real_model
def test_real_special_tokens_and_bos(pair):
    cpp, py, _ = pair
    if cpp.model == "gpt2":  # SmolLM2: no BOS added, <|im_start|> and <|im_end|> are single ids
        assert not cpp.add_bos
        ids = cpp.encode("<|im_start|>user\nhi<|im_end|>")
        assert ids[0] == 1 and ids[-1] == 2 and cpp.is_eog(2)
    else:  # Gemma 3: BOS added, <start_of_turn> a single id, "\n\n" a user-defined token
        assert cpp.add_bos and cpp.encode("")[:1] == [cpp.bos_id]
        ids = cpp.encode("<start_of_turn>user\n\nhi<end_of_turn>", add_special=False)
        assert cpp.token_text(ids[0]) == "<start_of_turn>" and cpp.token_text(ids[-1]) == "<end_of_turn>"
        assert cpp.token_text(ids[2]) == "\n\n" and cpp.is_eog(ids[-1])


@pytest.mark.real_model
def test_real_parse_special_off_matches_encode_special_tokens(pair):
    cpp, _, path = pair
    literal = Tokenizer.from_model(path)
    literal._backend.encode_special_tokens = True  # tokenizers: special tokens are plain text
    for s in TEXTS + RANDOM[:100]:
        assert cpp.encode(s, parse_special=False) == literal.encode(s), s


@pytest.mark.real_model
def test_real_vocab_bytes_and_decode(pair):
    cpp, py, _ = pair
    n = py.vocab_size
    assert cpp.vocab_size == n and cpp.eog_ids == py.eos_ids
    assert (cpp.bos_id, cpp.eos_id, cpp.add_bos, cpp.add_eos) == (py.bos_id, py.eos_id, py.add_bos, py.add_eos)
    for i in range(n):
        assert cpp.token_bytes(i) == py.token_bytes(i), i
        assert cpp.is_special(i) == py.is_special(i), i
    assert [i for i in range(n) if cpp.decode([i]) != py.decode([i])] == []
    assert [i for i in range(n) if cpp.token_text(i) != py.token_text(i)] == []
    # every token once, in random chunks: characters split across tokens, invalid sequences
    perm = np.random.default_rng(0).permutation(n).tolist()
    for k in range(0, n, 7):
        chunk = perm[k:k + 7]
        assert cpp.decode(chunk) == py.decode(chunk), chunk
        assert cpp.decode(chunk, skip_special=True) == py.decode(chunk, skip_special=True), chunk


@pytest.mark.real_model
def test_real_stream_decoder(pair):
    cpp, py, _ = pair
    rng = random.Random(1)
    cases = [py.encode(s) for s in TEXTS + RANDOM[:50]]
    cases += [[rng.randrange(py.vocab_size) for _ in range(rng.randint(0, 16))] for _ in range(200)]
    for ids in cases:
        for skip in (False, True):
            ours = _stream(cpp.stream_decoder(skip_special=skip), ids)
            assert ours == _stream(py.decoder(skip_special=skip), ids), ids
            assert "".join(ours[0]) + ours[1] == cpp.decode(ids, skip_special=skip)
    prompt = py.encode("Say something:")
    for ids in cases[:60]:
        assert _stream(cpp.stream_decoder(prompt), ids) == _stream(py.decoder(prompt), ids), ids
        half = ids[: len(ids) // 2]  # a prompt that may end inside a character
        rest = ids[len(ids) // 2:]
        assert _stream(cpp.stream_decoder(half), rest) == _stream(py.decoder(half), rest), ids


@pytest.mark.real_model
def test_real_errors(pair):
    cpp, _, _ = pair
    assert cpp.encode("ok bad".encode()) == cpp.encode("ok bad")
    for bad in (b"ok \xff bad", b"\xc0\x80", b"\xed\xa0\x80", b"abc\xe2\x82"):
        with pytest.raises(ValueError, match="not valid UTF-8"):
            cpp.encode(bad)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        cpp.decode([cpp.vocab_size])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        cpp.token_bytes(-1)


# ---- the pre-tokenizer matcher and the Unicode tables (no model) ------------------------------------


def _pre_groups():
    """One name per distinct regex list of tokenizer_load's table."""
    seen, names = set(), []
    for name, (regexes, _) in tokenizer_load._PRE_SPLITS.items():
        if regexes not in seen:
            seen.add(regexes)
            names.append(name)
    return names


@pytest.mark.parametrize("pre", _pre_groups())
def test_pre_tokenizer_matches_tokenizers_regexes(pre):
    regexes, _ = tokenizer_load._PRE_SPLITS[pre]
    hf = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r), behavior="isolated") for r in regexes])
    for s in TEXTS + RANDOM + random_texts(300, seed=pre.__hash__() % 1000) + [SAMPLE[:20000], STDLIB[:20000]]:
        assert _core._cpp_pre_tokenize(pre, s) == [p for p, _ in hf.pre_tokenize_str(s)], s


def test_pre_tokenizer_names_cover_the_python_table():
    for name in tokenizer_load._PRE_SPLITS:
        _core._cpp_pre_tokenize(name, "x")
    with pytest.raises(fastspec.ModelError, match="tokenizer.ggml.pre 'no-such-pre' is not supported"):
        _core._cpp_pre_tokenize("no-such-pre", "x")


def test_regex_subset_semantics():
    split = _core._cpp_regex_split
    cases = [(r"\s+(?!\S)|\s+", "a   b \n\t x  "), (r"\p{N}{1,3}", "12345x6"), (r"(?i:'s|'t)", "it'S 'ſ 'T 'K"),
             (r"[\p{Lu}]*[\p{Ll}]+", "ABCdef GHI jk"), (r"a?b+c*", "xbbbcc abc ac"), (r"\s*[\r\n]+", " \n \r\n  x"),
             (r"[^\s\p{L}]{2}", "ab!!?? 1"), (r"\P{L}+", "ab12 c"), (r"(?:ab|a)(?:bc)?", "abc abbc"),
             (r"[0-9][0-9][0-9]", "1234567"), (r"[\p{P}\$\+<=>\^~\|`]+", "a+b=$c^|~`d!?")]
    for pattern, text in cases:
        hf = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
        assert split([pattern], text) == [p for p, _ in hf.pre_tokenize_str(text)], (pattern, text)
    for bad in ["(a)", "a|*", "[a", r"\p{Xx}", "a{3,1}", "a*?", ".", r"\q"]:
        with pytest.raises(ValueError, match="pre-tokenizer regex"):
            split([bad], "x")


def test_unicode_tables_match_tokenizers_regex_library():
    """Every code point's general category and White_Space flag in the C++ tables equal what
    tokenizers' regex library (Oniguruma) matches with \\p{..} and \\s; the tables are generated
    from the same Unicode version (gen_unicode_tables.py), not the running Python's."""
    assert _core._cpp_unicode_version == "16.0.0"
    props = np.frombuffer(_core._cpp_unicode_props_all(), dtype=np.uint8)
    cps = np.concatenate([np.arange(0, 0xD800), np.arange(0xE000, 0x110000)])  # no surrogates in a str
    size = 8192
    chunks = ["".join(map(chr, cps[i:i + size])) for i in range(0, len(cps), size)]
    for k, name in enumerate(_core._cpp_unicode_categories + ["White_Space"]):
        if name == "Cs":
            continue
        split = pre_tokenizers.Split(Regex(r"\s+" if k == 30 else r"\p{%s}+" % name), behavior="removed")
        mark = np.zeros(len(cps) + 1, np.int32)  # +1 at the start of each non-member run, -1 after
        for c, chunk in enumerate(chunks):
            for _, (a, b) in split.pre_tokenize_str(chunk):
                mark[c * size + a] += 1
                mark[c * size + b] -= 1
        member = np.cumsum(mark[:-1]) == 0
        ours = (props[cps] & 32) != 0 if k == 30 else (props[cps] & 31) == k
        assert np.array_equal(member, ours), (name, [hex(cps[i]) for i in np.nonzero(member != ours)[0][:10]])


# ---- tiny GGUF vocabularies made here --------------------------------------------------------------


def _write_gguf(path, keys, arch="llama", tok=None):
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(1)
    for key, value in keys.items():
        getattr(w, f"add_{key}")(value)
    if tok is not None:
        add_tokenizer(w, tok)
    w.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return str(path)


def _pair(path):
    return _core.CppTokenizer(path), Tokenizer.from_gguf(path)


def test_tiny_model_vocabulary(tmp_path):
    """The tiny test models' vocabulary (tests/tiny_models.py: gpt2-style, 4 control tokens)."""
    cpp, py = _pair(_write_gguf(tmp_path / "tiny.gguf", {}, tok=tiny_tokenizer(320)))
    check_same_tokenizer(cpp, py, TEXTS + RANDOM)
    assert cpp.eog_ids == {1, 3}


def _byte_level_keys(pre, extra_tokens=(), extra_merges=(), **kw):
    b2u = bytes_to_unicode()
    tokens = ["<|endoftext|>", "<|im_end|>", "<|im_start|>"] + [b2u[b] for b in range(256)]
    merges = []
    words = ["he", "ll", "hell", "hello", "Ġw", "Ġwo", "Ġwor", "Ġworl", "Ġworld", "Ġt", "Ġth", "Ġthe", "12",
             "123", "ĠĠ", "ĠĠĠĠ", "Ċ", "ĊĊ", "in", "Ġin", "er", "'s"]
    for w in words:  # merges: every word from its longest proper prefix in the vocabulary
        for k in range(len(w) - 1, 0, -1):
            if w[:k] in tokens and w[k:] in tokens:
                merges.append(f"{w[:k]} {w[k:]}")
                tokens.append(w)
                break
    tokens += list(extra_tokens) + ["<think>", "xyzzy"]  # xyzzy: no merges lead to it
    merges += list(extra_merges)
    types = [3, 3, 3] + [1] * (len(tokens) - 4) + [1]
    types[tokens.index("<think>")] = 4
    keys = dict(tokenizer_model="gpt2", tokenizer_pre=pre, token_list=tokens, token_merges=merges,
                token_types=types, bos_token_id=0, eos_token_id=1)
    keys.update(kw)
    return keys


@pytest.mark.parametrize("pre", ["gpt2", "smollm", "llama-bpe", "dbrx", "qwen2", "tekken", "gpt-4o",
                                 "falcon", "default"])
def test_tiny_byte_level(tmp_path, pre):
    texts = TEXTS + RANDOM[:120] + ["hello world xyzzy the in", "<think>xyzzy</think>", "  12345 123 1"]
    cpp, py = _pair(_write_gguf(tmp_path / f"bpe-{pre}.gguf", _byte_level_keys(pre)))
    check_same_tokenizer(cpp, py, texts)
    ids = cpp.encode("xyzzy", add_special=False)
    assert len(ids) == (1 if pre in ("llama-bpe", "tekken") else 5)  # ignore_merges: a word that is a token


def test_tiny_byte_level_flags(tmp_path):
    cpp, py = _pair(_write_gguf(tmp_path / "bpe-flags.gguf", _byte_level_keys(
        "llama3", add_bos_token=True, add_eos_token=True, eot_token_id=2)))
    check_same_tokenizer(cpp, py, TEXTS[:12])
    assert cpp.encode("hello")[0] == 0 and cpp.encode("hello")[-1] == 1 and cpp.eog_ids == {0, 1, 2}
    cpp, py = _pair(_write_gguf(tmp_path / "bpe-noflags.gguf", _byte_level_keys("llama3", add_bos_token=False)))
    assert not cpp.add_bos and cpp.encode("hello") == py.encode("hello")


def _spm_keys(scores=True, byte_tokens=True, **kw):
    """A Llama-2-like vocabulary: <unk> <s> </s>, byte tokens, pieces, no merges stored."""
    pieces = ["\u2581", "h", "e", "l", "o", "w", "r", "d", "t", "i", "n", "a", "s", ",", "\u2581h", "\u2581he",
              "ll", "\u2581hell", "\u2581hello", "\u2581w", "or", "\u2581wor", "\u2581t", "\u2581th", "\u2581the",
              "in", "\u2581in", "\u2581a", "an", "\u2581an", "\u2581\u2581", "\u2581\u2581\u2581\u2581", "é", "日",
              "\n", "<0x41>x"]
    tokens = ["<unk>", "<s>", "</s>"] + ([f"<0x{b:02X}>" for b in range(256)] if byte_tokens else []) + pieces
    nb = 256 if byte_tokens else 0
    types = [2, 3, 3] + [6] * nb + [1] * len(pieces)
    keys = dict(tokenizer_model="llama", token_list=tokens, token_types=types, bos_token_id=1, eos_token_id=2,
                unk_token_id=0)
    if scores:
        rng = random.Random(3)  # scores with ties, so the derived order needs every tie-break
        keys["token_scores"] = [0.0] * (3 + nb) + [-float(rng.randint(0, 8)) for _ in pieces]
    keys.update(kw)
    return keys


@pytest.mark.parametrize("variant", ["scores", "no-scores", "no-space-prefix", "no-byte-tokens"])
def test_tiny_sentencepiece(tmp_path, variant):
    keys = {"scores": _spm_keys(), "no-scores": _spm_keys(scores=False),
            "no-space-prefix": _spm_keys(add_space_prefix=False),
            "no-byte-tokens": _spm_keys(byte_tokens=False)}[variant]
    cpp, py = _pair(_write_gguf(tmp_path / f"spm-{variant}.gguf", keys))
    check_same_tokenizer(cpp, py, TEXTS + RANDOM[:150] + ["hello world", "<s>hello", " hello", "hello </s> the"])
    pieces = lambda ids: [cpp.token_text(i) for i in ids]  # noqa: E731
    if variant == "no-byte-tokens":
        assert pieces(cpp.encode("hello 😀😀 x", add_special=False)).count("<unk>") == 2  # fused per run
    if variant != "no-space-prefix":
        assert cpp.decode(cpp.encode("hello")) == "<s> hello" and cpp.decode(cpp.encode("hello")[1:]) == "hello"


def test_tiny_sentencepiece_stored_merges(tmp_path):
    keys = _spm_keys(scores=False)
    keys["token_merges"] = ["\u2581 h", "\u2581h e", "l l", "\u2581he ll", "\u2581hell o", "o r", "\u2581 w",
                            "\u2581w or", "\u2581 t", "\u2581t h", "\u2581th e", "i n", "\u2581 in", "\u2581 \u2581"]
    cpp, py = _pair(_write_gguf(tmp_path / "spm-merges.gguf", keys))
    check_same_tokenizer(cpp, py, TEXTS + RANDOM[:100])


def _gemma_keys(duplicate=False):
    """A Gemma-like vocabulary: no merges, file-position merge order, runs of spaces stored as
    spaces, user-defined newline and tag tokens, no space prefix."""
    pieces = ["\u2581", "h", "e", "l", "o", "w", "r", "d", "t", "i", "n", "a", "\u2581h", "\u2581he", "ll",
              "\u2581hell", "\u2581hello", "or", "\u2581w", "\u2581wor", "\u2581t", "\u2581the", "th", "he", "in",
              "\u2581in", "\u2581a", "an", "\u2581an"]
    if duplicate:
        pieces += ["ll", "\u2581he"]  # repeated spellings: the later id wins, merges by score path
    user = ["\n", "\n\n", "  ", "   ", "<table>", "</table>"]
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"] + \
        [f"<0x{b:02X}>" for b in range(256)] + pieces + user
    types = [3] * 6 + [6] * 256 + [1] * len(pieces) + [4] * len(user)
    return dict(tokenizer_model="llama", token_list=tokens, token_types=types, token_scores=[0.0] * len(tokens),
                bos_token_id=2, eos_token_id=1, unk_token_id=3, pad_token_id=0, add_space_prefix=False,
                add_bos_token=True)


@pytest.mark.parametrize("duplicate", [False, True])
def test_tiny_gemma_like(tmp_path, duplicate):
    cpp, py = _pair(_write_gguf(tmp_path / "gemma-like.gguf", _gemma_keys(duplicate), arch="gemma3"))
    texts = TEXTS + RANDOM[:150] + ["<start_of_turn>user\n\nhello  the   in<end_of_turn>\n", "  \n\n\n   x"]
    check_same_tokenizer(cpp, py, texts)
    assert cpp.decode(cpp.encode(" hello", add_special=False)) == " hello"  # Gemma keeps the leading space


def test_utf8_replacement_and_streaming_match_python(tmp_path):
    """Random byte strings (mostly almost-UTF-8) through the tiny byte-level vocabulary: decode equals
    bytes.decode('utf-8', 'replace'); the stream pieces equal Python's incremental decoder's."""
    cpp, py = _pair(_write_gguf(tmp_path / "bytes.gguf", {}, tok=tiny_tokenizer(320)))
    rng = random.Random(5)
    alphabet = list(range(0x00, 0x80, 9)) + list(range(0x80, 0xC0)) + list(range(0xC0, 0x100))
    for _ in range(3000):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        ids = [4 + b for b in data]  # tiny_tokenizer: id = 4 + byte
        assert cpp.decode(ids) == data.decode("utf-8", "replace") == py.decode(ids), data
        assert _stream(cpp.stream_decoder(), ids) == _stream(py.decoder(), ids), data


# ---- errors ------------------------------------------------------------------------------------------


def test_errors_name_the_file_and_key(tmp_path):
    path = _write_gguf(tmp_path / "weights-only.gguf", {})
    with pytest.raises(fastspec.ModelError, match=r"weights-only\.gguf.*no tokenizer data"):
        _core.CppTokenizer(path)
    path = _write_gguf(tmp_path / "odd-pre.gguf", _byte_level_keys("no-such-pre"))
    with pytest.raises(fastspec.ModelError, match=r"odd-pre\.gguf: tokenizer.ggml.pre 'no-such-pre'"):
        _core.CppTokenizer(path)
    path = _write_gguf(tmp_path / "bad-merge.gguf", _byte_level_keys("gpt2", extra_merges=["h zz"]))
    with pytest.raises(fastspec.ModelError, match=r"bad-merge\.gguf: tokenizer.ggml.merges\[\d+\] 'h zz'"):
        _core.CppTokenizer(path)
    path = _write_gguf(tmp_path / "no-merges.gguf", _byte_level_keys("gpt2", token_merges=[]))
    with pytest.raises(fastspec.ModelError, match=r"no-merges\.gguf.*without tokenizer.ggml.merges"):
        _core.CppTokenizer(path)
    keys = _spm_keys()
    keys["tokenizer_model"] = "bert"
    with pytest.raises(fastspec.ModelError, match=r"tokenizer model 'bert'.*tokenizer.ggml.model"):
        _core.CppTokenizer(_write_gguf(tmp_path / "bert.gguf", keys))
    keys = _spm_keys()
    keys["token_types"] = keys["token_types"][:-1]
    with pytest.raises(fastspec.ModelError, match=r"token_type has \d+ entries for \d+ tokens"):
        _core.CppTokenizer(_write_gguf(tmp_path / "types.gguf", keys))
    keys = _spm_keys()
    keys["bos_token_id"] = 99999  # outside the vocabulary: no BOS, as in Python
    cpp, py = _pair(_write_gguf(tmp_path / "far-bos.gguf", keys))
    assert cpp.bos_id is None and not cpp.add_bos and cpp.encode("hello") == py.encode("hello")
    with pytest.raises(FileNotFoundError):
        _core.CppTokenizer(str(tmp_path / "missing.gguf"))
