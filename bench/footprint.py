"""Footprint: library size, peak RSS at a 2k context, and startup time to the first token,
fastspec next to llama.cpp on this machine, in one run.

    python bench/footprint.py [--models smollm2-135m-instruct,gemma3-270m] [--threads 2]
                              [--context 2048] [--repeats 5] [--lib-dir build/lib] [--example BIN]
                              [--out report.md]

  * Library size: fastspec's libfastspec.so / libfastspec.a (a C++ build: --lib-dir, default
    build/footprint, built by this script with `cmake -DFASTSPEC_CUDA=OFF` when absent; sizes as
    built and after `strip`) and the Python extension; llama.cpp's shared libraries as
    llama-cpp-python ships them (libllama + libggml*).
  * Peak RSS at --context: a fresh child process per (engine, model) loads the model with a
    --context KV cache, prefills context - 64 prompt ids and decodes 63 tokens (the cache full),
    and reports its VmHWM (compare_llamacpp.py's child: the same two low-level drivers).
  * Startup to the first token: a fresh child process per repeat; from just before the engine is
    created (imports done) to the first generated token of a 32-id prompt, and the whole process
    wall time from spawn to that token (interpreter + imports included). Medians of --repeats.
    With --example, the C++ example app (examples/cpp; tokenizer and chat template included)
    timed the same way from spawn.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import compare_llamacpp as cl  # noqa: E402


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.2f}"


def stripped_size(path: Path) -> int:
    tmp = Path("/tmp") / f"fs-strip-{os.getpid()}-{path.name}"
    shutil.copy(path, tmp)
    subprocess.run(["strip", "--strip-unneeded", str(tmp)], check=True)
    n = tmp.stat().st_size
    tmp.unlink()
    return n


def build_library(lib_dir: Path) -> None:
    if (lib_dir / "libfastspec.so").exists():
        return
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(lib_dir), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                    "-DFASTSPEC_CUDA=OFF"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(lib_dir), "-j2", "--target", "fastspec_shared", "fastspec_core"],
                   check=True, capture_output=True)


def library_rows(lib_dir: Path):
    rows = []
    for name in ("libfastspec.so", "libfastspec.a"):
        p = lib_dir / name
        p = p.resolve() if p.exists() else p
        if p.exists():
            rows.append(("fastspec", name, p.stat().st_size, stripped_size(p) if name.endswith(".so") else None))
    from fastspec import _core
    ext = Path(_core.__file__)
    rows.append(("fastspec", f"Python extension {ext.name}", ext.stat().st_size, stripped_size(ext)))
    try:
        import llama_cpp
        libdir = Path(llama_cpp.__file__).parent / "lib"
        total = total_s = 0
        for p in sorted(libdir.glob("lib*.so")):
            if p.is_symlink():
                continue
            s, ss = p.stat().st_size, stripped_size(p)
            rows.append(("llama.cpp", p.name, s, ss))
            total, total_s = total + s, total_s + ss
        rows.append(("llama.cpp", "all shared libraries", total, total_s))
    except ImportError:
        pass
    return rows


# ---- startup: a child process per repeat ------------------------------------------------------------

def startup_child(spec_json: str) -> None:
    """Hidden --startup-child: imports, then time engine creation -> first token; one JSON line."""
    s = json.loads(spec_json)
    args = argparse.Namespace(fastspec_opts={}, llama_opts={}, verbose=False)
    if s["engine"] == "fastspec":
        from fastspec import _core  # noqa: F401
    else:
        cl.llama_lib()
    t0 = time.perf_counter()
    e = cl.make_engine(s["engine"], args)
    e.load(s["path"], s["threads"], s["context"], 512)
    t_load = time.perf_counter()
    _, tok = e.prefill(s["ids"])
    t_first = time.perf_counter()
    print(json.dumps({"load_s": t_load - t0, "first_token_s": t_first - t0, "token": int(tok),
                      "wall_first_token": time.time()}))
    sys.stdout.flush()
    e.close()


def run_startup(engine: str, path: str, ids, threads: int, context: int):
    spec = {"engine": engine, "path": path, "ids": ids, "threads": threads, "context": context}
    t_spawn = time.time()
    p = subprocess.run([sys.executable, __file__, "--startup-child", json.dumps(spec)], capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise RuntimeError(f"startup child {engine} failed: {p.stderr[-800:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["process_s"] = r["wall_first_token"] - t_spawn
    return r


def run_example(binary: str, path: str, threads: int):
    """The C++ example app: spawn -> its first streamed byte (it prints the reply as it decodes)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, path, "Say hello.", "--max-tokens", "8", "--threads", str(threads)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = p.stdout.read(1)
    dt = time.perf_counter() - t0
    p.communicate()
    if p.returncode != 0 or not first:
        raise RuntimeError(f"example app failed (rc {p.returncode})")
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=cl.DEFAULT_MODELS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--context", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--lib-dir", default=str(ROOT / "build" / "footprint"))
    ap.add_argument("--example", default="", help="the C++ example binary (examples/cpp), timed from spawn")
    ap.add_argument("--out", default="")
    ap.add_argument("--startup-child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.startup_child:
        return startup_child(a.startup_child)

    import fastspec
    lines = [f"# Footprint: fastspec vs llama.cpp ({platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} CPUs, threads {a.threads})", "",
             f"Command: `python bench/footprint.py {' '.join(sys.argv[1:])}`", ""]
    lib_dir = Path(a.lib_dir)
    build_library(lib_dir)
    lines += ["## Library size (MiB)", "", "| engine | file | as built | stripped |", "|---|---|---|---|"]
    for eng, name, s, ss in library_rows(lib_dir):
        lines.append(f"| {eng} | {name} | {mib(s)} | {mib(ss) if ss is not None else '-'} |")

    lines += ["", f"## Peak RSS at a {a.context}-token context (MiB; cache filled: prefill {a.context - 64} ids, "
              "decode 63)", "", "| model | file MiB | fastspec | llama.cpp | ratio |", "|---|---|---|---|---|"]
    st_rows = []
    for model in a.models.split(","):
        path = str(fastspec.models.path(model))
        ids_all = cl.llama_tokenize(path, cl.TEXT * 40)
        ids_rss = ids_all[: a.context - 64]
        rargs = argparse.Namespace(positions=[len(ids_rss)], rss_contexts=[a.context], engines=list(cl.ENGINES),
                                   threads=[a.threads], rss_decode=63, fastspec_opts={}, llama_opts={})
        rows = {r["engine"]: r for r in cl.measure_rss(model, path, ids_all, rargs)}
        fs, ll = rows["fastspec"].get("peak_kb"), rows["llama.cpp"].get("peak_kb")
        ratio = f"{fs / ll:.2f}" if fs and ll else "-"
        lines.append(f"| {model} | {mib(os.path.getsize(path))} | {fs / 1024:.0f} | {ll / 1024:.0f} | {ratio} |"
                     if fs and ll else f"| {model} | - | {rows} | | |")
        ids = ids_all[:32]
        res = {eng: [run_startup(eng, path, ids, a.threads, a.context) for _ in range(a.repeats)]
               for eng in cl.ENGINES}
        tokens = {eng: {r["token"] for r in rs} for eng, rs in res.items()}
        ex = [run_example(a.example, path, a.threads) for _ in range(a.repeats)] if a.example else None
        st_rows.append((model, res, tokens, ex))
    lines += ["", f"## Startup to the first token (32-id prompt, context {a.context}; medians of {a.repeats}, ms)", "",
              "| model | engine | load | first token (from engine creation) | process spawn -> first token |",
              "|---|---|---|---|---|"]
    for model, res, tokens, ex in st_rows:
        for eng, rs in res.items():
            med = {k: statistics.median(r[k] for r in rs) * 1e3 for k in ("load_s", "first_token_s", "process_s")}
            lines.append(f"| {model} | {eng} | {med['load_s']:.1f} | {med['first_token_s']:.1f} | "
                         f"{med['process_s']:.1f} |")
        if ex:
            lines.append(f"| {model} | fastspec C++ example (examples/cpp) | | | {statistics.median(ex) * 1e3:.1f} |")
        if tokens["fastspec"] != tokens["llama.cpp"]:
            lines.append(f"| {model} | first tokens differ: {tokens} | | | |")
    report = "\n".join(lines) + "\n"
    print(report)
    if a.out:
        Path(a.out).write_text(report)


if __name__ == "__main__":
    main()
