"""The `fastspec` command line."""
import subprocess
import sys

import pytest

from fastspec import cli
from gguf_bytes import f32_tensor_file


def test_info_prints_summary_and_tensors(tmp_path, capsys):
    p = tmp_path / "m.gguf"
    p.write_bytes(f32_tensor_file())
    assert cli.main(["info", str(p), "--tensors", "--metadata"]) == 0
    out = capsys.readouterr().out
    assert "format        gguf" in out and "architecture  llama" in out
    assert "F32 x1" in out and "general.architecture = 'llama'" in out
    assert "w " in out.split("tensors:")[1]


def test_info_bad_file_is_a_clean_error(tmp_path, capsys):
    p = tmp_path / "bad.gguf"
    p.write_bytes(b"GGUX" + b"\0" * 40)
    assert cli.main(["info", str(p)]) == 2
    assert "bad.gguf: not a GGUF file" in capsys.readouterr().err


@pytest.mark.real_model
def test_info_on_real_model_via_entry_point(smollm2_path):
    out = subprocess.run([sys.executable, "-m", "fastspec", "info", smollm2_path], capture_output=True, text=True,
                         check=True).stdout
    assert "layers        30   embedding 576" in out
    assert "attention     9 heads, 3 kv heads, head dim 64" in out
    assert "tokenizer     gpt2   chat template: yes" in out


def test_run_streams_on_a_tiny_model(tmp_path, capsys):
    pytest.importorskip("gguf")
    import tiny_models as tm

    cfg = tm.tiny_config("llama")
    tm.write_gguf(tmp_path / "t.gguf", cfg, tm.random_weights(cfg), qtype="Q8_0")
    assert cli.main(["run", "--model", str(tmp_path / "t.gguf"), "-n", "5", "--stats", "hello"]) == 0
    captured = capsys.readouterr()
    assert "5 tokens" in captured.err or "tokens," in captured.err


def test_run_bad_parameter_is_clean_error(tmp_path, capsys):
    pytest.importorskip("gguf")
    import tiny_models as tm

    cfg = tm.tiny_config("llama")
    tm.write_gguf(tmp_path / "t.gguf", cfg, tm.random_weights(cfg), qtype="F32")
    assert cli.main(["run", "--model", str(tmp_path / "t.gguf"), "--top-p", "0", "hi"]) == 2
    assert "top_p must be in (0, 1]" in capsys.readouterr().err


@pytest.mark.real_model
def test_run_default_model_applies_chat_template(smollm2_path):
    out = subprocess.run([sys.executable, "-m", "fastspec", "run", "-n", "12", "What is 2+2?"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip(), out.stderr
    assert "<|im_start|>" not in out.stdout  # special tokens are not printed
