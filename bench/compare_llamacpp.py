"""Plain decoding and prefill speed: fastspec vs llama.cpp on the same GGUF, same machine, same run.

    python bench/compare_llamacpp.py                       # both models, 1 and 2 threads, 5 repeats
    python bench/compare_llamacpp.py --quick --models smollm2-135m-instruct     # smoke test
    python bench/compare_llamacpp.py --threads 1 --skip-rss --skip-busy --out report.md
    python bench/compare_llamacpp.py --fastspec-opt precision=int8 --fastspec-opt threads=2

Both engines are driven at their lowest Python level and timed the same way (time.perf_counter
around each call, argmax in numpy included in a decode step):
  * llama.cpp through llama-cpp-python's low-level ctypes API: llama_batch_init + llama_decode +
    llama_get_logits_ith (a numpy view, no copy), llama_memory_clear / llama_memory_seq_rm for the KV
    cache. Never the high-level Llama.eval(), whose per-token Python overhead understates llama.cpp.
  * fastspec through fastspec._core: Engine(path, EngineOptions) -> new_context() -> forward(ids)
    (logits [len(ids), vocab]) / truncate(n).

Engines alternate per repeat (fastspec #1, llama.cpp #1, fastspec #2, ...); figures are medians over
--repeats. Both get identical prompt ids (llama.cpp's tokenizer; fastspec's is checked against it).
Measured per (model, threads, engine):
  (1) prefill of P0 ids (first of --positions, default 256) and decode of --n-gen greedy tokens
      from position P0, with greedy agreement of the two engines' first --n-gen tokens;
  (2) prefill + decode of --n-gen-long tokens at each further position (default 2048);
  (3) the cost of one forward of T = --t-costs new tokens at P0 (logits for all T rows, as a
      speculative verify pass needs), rolled back to P0 after each;
  (4) with --busy (default on; --skip-busy turns it off): the P0 decode while another process spins
      on a core, as % of the idle figure;
  (5) peak RSS of a fresh child process per (engine, model, context) (--skip-rss turns it off).
Prints a markdown report (and writes it to --out).
"""
from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import platform
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from busy import busy_core  # noqa: E402

DEFAULT_MODELS = "smollm2-135m-instruct,gemma3-270m"
ENGINES = ("fastspec", "llama.cpp")

TEXT = (
    "The history of computing is a story of abstractions layered on abstractions. Early machines were "
    "programmed by rewiring panels of cables; later, stored programs let the same hardware run many "
    "different tasks, and assemblers spared programmers from writing raw numbers. Compilers followed, "
    "then operating systems that shared one processor among many users, and networks that joined "
    "distant machines into a single system.\n\n"
    "A river begins as rain on a hillside. Water gathers in small channels, the channels join into "
    "streams, and the streams carve valleys over thousands of years. Along the way the river carries "
    "sand and silt, drops it where the current slows, and builds the flat, fertile plains on which "
    "farmers have grown wheat, rice and barley since the first cities were founded.\n\n"
    "To bake bread, mix flour, water, salt and a little yeast, then knead the dough until it is smooth "
    "and elastic. Let it rise in a warm place for an hour or two, shape it into a loaf, and let it rise "
    "again. Bake it in a hot oven until the crust is brown and the loaf sounds hollow when you tap it.\n\n"
    "The committee met on Tuesday to review the budget for the coming year. Several members argued that "
    "the library needed new computers, while others wanted to repair the roof before winter. After a "
    "long discussion they agreed to split the money, and the chair promised a report by the end of the "
    "month.\n\n"
)


def now() -> float:
    return time.perf_counter()


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def parse_value(s: str):
    """'4' -> 4, '0.5' -> 0.5, 'true'/'false' -> bool, anything else stays a string."""
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    return s


def parse_opts(pairs):
    out = {}
    for p in pairs or []:
        if "=" not in p:
            raise SystemExit(f"option {p!r}: expected key=value")
        k, v = p.split("=", 1)
        out[k.strip()] = parse_value(v.strip())
    return out


def set_attrs(obj, opts: dict, what: str) -> None:
    for k, v in opts.items():
        if not hasattr(obj, k):
            raise SystemExit(f"{what} has no field {k!r}")
        setattr(obj, k, v)


# ---- fastspec -------------------------------------------------------------------------------------

class FastspecEngine:
    """fastspec._core.Engine + one Context (its KV cache). forward(ids) runs ids at the next
    positions and returns float32 logits [len(ids), vocab]."""

    name = "fastspec"
    # Keywords tried (in order) to get only the last row's logits from a prefill; a binding without
    # them raises TypeError before computing anything, and prefill then takes all rows.
    LAST_ROW_KWARGS = ({"logits": "last"}, {"last_only": True})

    def __init__(self, options: dict | None = None):
        self.options = dict(options or {})
        self.eng = self.ctx = None
        self.last_kw = None

    def load(self, path: str, threads: int, n_ctx: int, n_batch: int) -> None:
        from fastspec import _core
        opts = _core.EngineOptions()
        opts.threads, opts.context = threads, n_ctx
        set_attrs(opts, self.options, "fastspec EngineOptions")
        self.eng = _core.Engine(path, opts)
        self.ctx = self.eng.new_context()
        self.vocab = int(self.eng.config.vocab_size)
        self.last_kw = self._probe_last_row()

    def _probe_last_row(self):
        for kw in self.LAST_ROW_KWARGS:
            try:
                out = np.asarray(self.ctx.forward([1, 2], **kw))
            except TypeError:
                continue
            finally:
                self.ctx.truncate(0)
            if out.ndim == 1 or out.shape[0] == 1:
                return kw
        return None

    def describe(self) -> dict:
        from fastspec import _core
        d = _core.EngineOptions()
        fields = {k: getattr(d, k) for k in dir(d) if not k.startswith("_")}
        kw = ", ".join(f"{k}={v!r}" for k, v in (self.last_kw or {}).items())
        return {
            "engine threads": self.eng.threads,
            "EngineOptions defaults": fields,
            "EngineOptions set": {"context": self.eng.context, **self.options},
            "prefill logits": (f"last row only: forward(ids, {kw})" if self.last_kw else
                               "ALL rows (the binding has no last-row option; tried forward(ids, "
                               "logits='last') and forward(ids, last_only=True)); llama.cpp computes "
                               "only the last row"),
        }

    def reset(self) -> None:
        self.ctx.truncate(0)

    def truncate(self, n: int) -> None:
        self.ctx.truncate(n)

    @property
    def length(self) -> int:
        return self.ctx.length

    def prefill(self, ids):
        """(seconds, greedy next token) for ids appended to the cache."""
        kw = self.last_kw or {}
        t0 = now()
        out = self.ctx.forward(ids, **kw)
        tok = int(np.argmax(out[-1] if out.ndim == 2 else out))
        return now() - t0, tok

    def decode_step(self, tok: int):
        t0 = now()
        out = self.ctx.forward([tok])
        nxt = int(np.argmax(out[-1]))
        return now() - t0, nxt

    def forward_cost(self, ids) -> float:
        """Seconds for one forward of len(ids) new tokens, logits for every row."""
        t0 = now()
        self.ctx.forward(ids)
        return now() - t0

    def close(self) -> None:
        self.ctx = self.eng = None


# ---- llama.cpp (llama-cpp-python low-level API) ---------------------------------------------------

_LL = None
_LOG_CB = None  # keep the ctypes callback alive


def llama_lib(verbose: bool = False):
    """Import llama_cpp once: backend init, and llama.cpp's log silenced unless verbose."""
    global _LL, _LOG_CB
    if _LL is None:
        import llama_cpp as ll
        ll.llama_backend_init()
        if not verbose:
            _LOG_CB = ll.llama_log_callback(lambda level, text, user: None)
            ll.llama_log_set(_LOG_CB, ctypes.c_void_p(0))
        _LL = ll
    return _LL


def _first(ll, *names):
    for n in names:
        if hasattr(ll, n):
            return getattr(ll, n), n
    raise AttributeError(f"llama_cpp has none of {names}")


def llama_load_model(ll, path: str, vocab_only: bool = False, options: dict | None = None):
    load, _ = _first(ll, "llama_model_load_from_file", "llama_load_model_from_file")
    mp = ll.llama_model_default_params()
    mp.n_gpu_layers = 0
    mp.vocab_only = vocab_only
    set_attrs(mp, options or {}, "llama_model_params")
    model = load(path.encode(), mp)
    if not model:
        raise RuntimeError(f"llama.cpp could not load {path}")
    return model


def llama_free_model(ll, model) -> None:
    _first(ll, "llama_model_free", "llama_free_model")[0](model)


def llama_tokenize(path: str, text: str, verbose: bool = False):
    """Token ids of text with llama.cpp's tokenizer (add_special=True: BOS when the model wants it)."""
    ll = llama_lib(verbose)
    model = llama_load_model(ll, path, vocab_only=True)
    try:
        vocab = ll.llama_model_get_vocab(model)
        raw = text.encode()
        cap = len(raw) + 16
        while True:
            buf = (ll.llama_token * cap)()
            n = ll.llama_tokenize(vocab, raw, len(raw), buf, cap, True, False)
            if n >= 0:
                return list(buf[:n])
            cap = -n
    finally:
        llama_free_model(ll, model)


class LlamaCppEngine:
    """llama.cpp model + context + one llama_batch, sequence 0; positions tracked here."""

    name = "llama.cpp"

    def __init__(self, options: dict | None = None, verbose: bool = False, model_options: dict | None = None):
        self.options = dict(options or {})
        self.model_options = dict(model_options or {})
        self.verbose = verbose
        self.model = self.ctx = self.batch = None
        self.pos = 0
        self.api = {}

    def load(self, path: str, threads: int, n_ctx: int, n_batch: int) -> None:
        ll = self.ll = llama_lib(self.verbose)
        self.model = llama_load_model(ll, path, options=self.model_options)
        cp = ll.llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max = n_ctx, n_batch, n_batch, 1
        cp.n_threads = cp.n_threads_batch = threads
        if hasattr(cp, "n_outputs_max_per_seq"):
            cp.n_outputs_max_per_seq = 0  # default 1 in 0.3.36: a verify pass needs every row's logits
        set_attrs(cp, self.options, "llama_context_params")
        init, self.api["context"] = _first(ll, "llama_init_from_model", "llama_new_context_with_model")
        self.ctx = init(self.model, cp)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a context")
        self.cparams = {k: getattr(cp, k) for k, _ in cp._fields_
                        if isinstance(getattr(cp, k), (int, float, bool))}
        self.n_ctx_actual = ll.llama_n_ctx(self.ctx)
        self.vocab = ll.llama_vocab_n_tokens(ll.llama_model_get_vocab(self.model))
        self.batch = ll.llama_batch_init(n_batch, 0, 1)
        self.n_batch = n_batch
        if hasattr(ll, "llama_get_memory"):
            self.mem = ll.llama_get_memory(self.ctx)
            self._clear = lambda: ll.llama_memory_clear(self.mem, True)
            self._seq_rm = lambda p0: ll.llama_memory_seq_rm(self.mem, 0, p0, -1)
            self.api["kv"] = "llama_get_memory + llama_memory_clear / llama_memory_seq_rm"
        else:  # older bindings
            clear, n1 = _first(ll, "llama_kv_self_clear", "llama_kv_cache_clear")
            rm, n2 = _first(ll, "llama_kv_self_seq_rm", "llama_kv_cache_seq_rm")
            self._clear = lambda: clear(self.ctx)
            self._seq_rm = lambda p0: rm(self.ctx, 0, p0, -1)
            self.api["kv"] = f"{n1} / {n2}"
        self.pos = 0

    def describe(self) -> dict:
        keep = ("n_ctx", "n_batch", "n_ubatch", "n_seq_max", "n_outputs_max", "n_outputs_max_per_seq",
                "n_threads", "n_threads_batch", "flash_attn_type", "type_k", "type_v", "swa_full",
                "kv_unified", "no_perf")
        return {
            "context params": {k: self.cparams[k] for k in keep if k in self.cparams},
            "llama_n_ctx": self.n_ctx_actual,
            "API": f"llama_model_load_from_file, {self.api['context']}, llama_batch_init, llama_decode, "
                   f"llama_get_logits_ith, llama_synchronize, {self.api['kv']}",
            "options set": self.options,
            "model options set": self.model_options,
        }

    def _fill(self, ids, all_logits: bool) -> None:
        if len(ids) > self.n_batch:
            raise ValueError(f"{len(ids)} tokens > n_batch {self.n_batch}")
        b, p, last = self.batch, self.pos, len(ids) - 1
        for i, t in enumerate(ids):
            b.token[i] = t
            b.pos[i] = p + i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = 1 if (all_logits or i == last) else 0
        b.n_tokens = len(ids)

    def _decode(self) -> None:
        rc = self.ll.llama_decode(self.ctx, self.batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc} at position {self.pos}")
        self.pos += self.batch.n_tokens

    def _argmax(self, i: int) -> int:
        ptr = self.ll.llama_get_logits_ith(self.ctx, i)
        if not ptr:
            raise RuntimeError(f"llama_get_logits_ith({i}) returned NULL")
        return int(np.argmax(np.ctypeslib.as_array(ptr, shape=(self.vocab,))))  # a view, no copy

    def reset(self) -> None:
        self._clear()
        self.pos = 0

    def truncate(self, n: int) -> None:
        if not self._seq_rm(n):
            raise RuntimeError(f"llama.cpp could not remove positions >= {n}")
        self.pos = n

    @property
    def length(self) -> int:
        return self.pos

    def prefill(self, ids):
        self._fill(ids, all_logits=False)
        t0 = now()
        self._decode()
        tok = self._argmax(len(ids) - 1)
        return now() - t0, tok

    def decode_step(self, tok: int):
        self._fill([tok], all_logits=False)
        t0 = now()
        self._decode()
        nxt = self._argmax(0)
        return now() - t0, nxt

    def forward_cost(self, ids) -> float:
        self._fill(ids, all_logits=True)
        t0 = now()
        self._decode()
        self.ll.llama_synchronize(self.ctx)
        return now() - t0

    def close(self) -> None:
        ll = self.ll
        if self.batch is not None:
            ll.llama_batch_free(self.batch)
        if self.ctx:
            ll.llama_free(self.ctx)
        if self.model:
            llama_free_model(ll, self.model)
        self.batch = self.ctx = self.model = None


def make_engine(name: str, args):
    if name == "fastspec":
        return FastspecEngine(args.fastspec_opts)
    return LlamaCppEngine(args.llama_opts, verbose=args.verbose, model_options=getattr(args, "llama_model_opts", {}))


# ---- measurements ---------------------------------------------------------------------------------

def decode_run(eng, tok: int, n: int):
    """n greedy decode steps from tok: (tokens [tok, ...] of n+1, seconds summed over the steps)."""
    toks, total = [tok], 0.0
    for _ in range(n):
        dt, tok = eng.decode_step(tok)
        total += dt
        toks.append(tok)
    return toks, total


def warm_up(eng, ids, t_max: int) -> None:
    """Fault pages in and size buffers: a prefill, two steps, one widest verify pass."""
    eng.reset()
    _, tok = eng.prefill(ids)
    decode_run(eng, tok, 2)
    eng.truncate(len(ids))
    eng.forward_cost(ids[:t_max])
    eng.reset()


def one_repeat(eng, ids, a) -> dict:
    """Everything idle for one engine, one repeat."""
    p0, r = a.positions[0], {}
    eng.reset()
    dt, tok = eng.prefill(ids[:p0])
    r["prefill"] = p0 / dt
    toks, dec = decode_run(eng, tok, a.n_gen)
    r["decode"], r["tokens"] = a.n_gen / dec, toks[: a.n_gen]
    verify = (toks + ids)[: max(a.t_costs)]
    for t in a.t_costs:
        r[f"T{t}"] = []
        for _ in range(a.t_inner):
            eng.truncate(p0)
            r[f"T{t}"].append(eng.forward_cost(verify[:t]))
    for p in a.positions[1:]:
        eng.reset()
        dt, tok = eng.prefill(ids[:p])
        r[f"prefill@{p}"] = p / dt
        _, dec = decode_run(eng, tok, a.n_gen_long)
        r[f"decode@{p}"] = a.n_gen_long / dec
    eng.reset()
    return r


def busy_repeat(eng, ids, a) -> dict:
    p0 = a.positions[0]
    eng.reset()
    dt, tok = eng.prefill(ids[:p0])
    _, dec = decode_run(eng, tok, a.n_gen)
    eng.reset()
    return {"prefill": p0 / dt, "decode": a.n_gen / dec}


def alternate(engines: dict, fn, ids, a, label: str) -> dict:
    """fn for each engine in turn, per repeat: {engine: [result per repeat]}."""
    out = {n: [] for n in engines}
    for rep in range(a.repeats):
        for n, e in engines.items():
            t0 = now()
            out[n].append(fn(e, ids, a))
            log(f"  {label} repeat {rep + 1}/{a.repeats} {n}: {now() - t0:.1f} s")
    return out


def bench_config(path: str, threads: int, ids, a) -> dict:
    """Load both engines for one (model, threads); idle repeats, then busy repeats."""
    n_ctx = max(a.positions) + max(a.n_gen, a.n_gen_long, max(a.t_costs)) + 16
    n_batch = max(a.positions)
    engines = {}
    try:
        for n in a.engines:
            e = make_engine(n, a)
            t0 = now()
            e.load(path, threads, n_ctx, n_batch)
            warm_up(e, ids[: a.positions[0]], max(a.t_costs))
            engines[n] = e
            log(f"  loaded {n} ({now() - t0:.1f} s incl. warm-up)")
        res = {"idle": alternate(engines, one_repeat, ids, a, "idle"),
               "describe": {n: e.describe() for n, e in engines.items()}}
        if a.busy:
            with busy_core():
                res["busy"] = alternate(engines, busy_repeat, ids, a, "busy")
        return res
    finally:
        for e in engines.values():
            e.close()


# ---- peak RSS in a child process ------------------------------------------------------------------

def _proc_status(*keys):
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                k = line.split(":")[0]
                if k in keys:
                    out[k] = int(line.split()[1])  # kB
    except OSError:
        pass
    return out


def _peak_kb() -> int:
    """This process's peak RSS (kB): VmHWM, which a fresh exec starts from zero. (ru_maxrss is not
    used: Linux carries the parent's high-water mark across fork + exec into the child's.)"""
    st = _proc_status("VmHWM")
    return st["VmHWM"] if "VmHWM" in st else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_child(spec_json: str) -> None:
    """Hidden --rss-child: load, prefill, decode a little; print one JSON line with peak RSS (kB)."""
    s = json.loads(spec_json)
    with open(s["ids_file"]) as f:
        ids = json.load(f)
    args = argparse.Namespace(fastspec_opts=s["fastspec_opts"], llama_opts=s["llama_opts"],
                              llama_model_opts=s.get("llama_model_opts", {}), verbose=False)
    if s["engine"] == "fastspec":
        from fastspec import _core  # noqa: F401  (import cost counted in the baseline)
    else:
        llama_lib()
    base = _peak_kb()
    e = make_engine(s["engine"], args)
    e.load(s["path"], s["threads"], s["context"], max(512, len(ids)))
    after_load = _peak_kb()
    _, tok = e.prefill(ids)
    decode_run(e, tok, s["n_decode"])
    st = _proc_status("RssAnon", "RssFile")
    peak = _peak_kb()
    e.close()
    print(json.dumps({"baseline_kb": base, "after_load_kb": after_load, "peak_kb": peak,
                      "rss_anon_kb": st.get("RssAnon"), "rss_file_kb": st.get("RssFile")}))


def model_max_context(path: str) -> int:
    try:
        from fastspec import _core
        return int(_core.ModelFile(path).config.context_length)
    except Exception:  # noqa: BLE001 (binding may change; fall back to the gguf reader)
        import gguf
        r = gguf.GGUFReader(path)
        f = r.fields["general.architecture"]
        arch = bytes(f.parts[f.data[0]]).decode()
        f = r.fields[f"{arch}.context_length"]
        return int(f.parts[f.data[0]][0])


def measure_rss(model: str, path: str, ids, a) -> list:
    rows = []
    max_ctx = model_max_context(path)
    contexts = sorted({min(c, max_ctx) for c in a.rss_contexts})
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(ids[: a.positions[0]], f)
        ids_file = f.name
    try:
        for ctx in contexts:
            for eng in a.engines:
                spec = {"engine": eng, "path": path, "threads": max(a.threads), "context": ctx,
                        "ids_file": ids_file, "n_decode": a.rss_decode,
                        "fastspec_opts": a.fastspec_opts, "llama_opts": a.llama_opts,
                        "llama_model_opts": a.llama_model_opts}
                p = subprocess.run([sys.executable, os.path.abspath(__file__), "--rss-child", json.dumps(spec)],
                                   capture_output=True, text=True)
                if p.returncode != 0:
                    log(f"  rss child {eng} ctx {ctx} failed: {p.stderr.strip()[-500:]}")
                    rows.append({"model": model, "engine": eng, "context": ctx, "error": f"rc {p.returncode}"})
                    continue
                r = json.loads(p.stdout.strip().splitlines()[-1])
                rows.append({"model": model, "engine": eng, "context": ctx, **r})
                log(f"  rss {eng} ctx {ctx}: peak {r['peak_kb'] / 1024:.0f} MiB")
    finally:
        os.unlink(ids_file)
    return rows


# ---- report ---------------------------------------------------------------------------------------

def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def table(headers, rows) -> str:
    right = ["---:" if i else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(right) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def f1(x) -> str:
    return "n/a" if x is None or x != x else f"{x:.1f}"


def ratio(a, b) -> str:
    return "n/a" if a is None or b is None or not b or a != a or b != b else f"**{a / b:.2f}**"


def med(res, eng, key):
    rs = res.get(eng)
    if not rs:
        return None
    vals = []
    for r in rs:
        v = r[key]
        vals += v if isinstance(v, list) else [v]
    return median(vals)


def agreement(res) -> tuple:
    fs, lc = res.get("fastspec"), res.get("llama.cpp")
    if not fs or not lc:
        return ("n/a",) * 4
    a, b = fs[-1]["tokens"], lc[-1]["tokens"]
    prefix = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    same = sum(x == y for x, y in zip(a, b))
    det = {n: all(r["tokens"] == rs[0]["tokens"] for r in rs) for n, rs in res.items()}
    return (f"{prefix} / {len(a)}", f"{same} / {len(a)}",
            "yes" if det.get("fastspec") else "NO", "yes" if det.get("llama.cpp") else "NO")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_rev() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return rev + (" (+ uncommitted changes)" if dirty else "")
    except OSError:
        return "?"


def header(a, meta) -> str:
    lines = [
        "# Plain decoding: fastspec vs llama.cpp (CPU)", "",
        f"Command: `python {shlex.join(sys.argv)}`", "",
        f"- date: {meta['date']}",
        f"- CPU: {cpu_model()}; {os.cpu_count()} logical CPUs "
        f"({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} usable); "
        f"load average at start {meta['loadavg']}",
        f"- python {platform.python_version()}, numpy {np.__version__}, {platform.platform()}",
        f"- fastspec {meta.get('fastspec_version', 'n/a')} (git {git_rev()}), core "
        f"`{meta.get('fastspec_core', 'n/a')}`",
        f"- llama-cpp-python {meta.get('llama_version', 'n/a')}; llama.cpp system info: "
        f"`{meta.get('llama_sysinfo', 'n/a')}`",
        f"- env: OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}, "
        f"FASTSPEC_CORE_DIR={os.environ.get('FASTSPEC_CORE_DIR', '(unset)')}",
        f"- repeats: {a.repeats} (engines alternate per repeat; medians); positions {a.positions}; "
        f"decode {a.n_gen} tokens at {a.positions[0]}, {a.n_gen_long} at later positions; "
        f"T-costs {a.t_costs} ({a.t_inner} per repeat)",
        "- timing: time.perf_counter around each call; a decode step includes the numpy argmax of the "
        "last row (llama.cpp: the batch is filled before the clock starts)",
    ]
    for m, p in meta["prompts"].items():
        lines.append(f"- prompt ({m}): {p}")
    return "\n".join(lines)


def engine_notes(results) -> str:
    seen, lines = set(), ["", "## Engine settings", ""]
    for (m, t), r in results.items():
        for n, d in r["describe"].items():
            if (m, n) in seen:
                continue
            seen.add((m, n))
            lines.append(f"- {n} ({m}, threads {t}): " + "; ".join(f"{k}: {v}" for k, v in d.items()))
    return "\n".join(lines)


def report(a, meta, results, rss_rows) -> str:
    p0 = a.positions[0]
    out = [header(a, meta), engine_notes(results)]

    rows = []
    for (m, t), r in results.items():
        idle = r["idle"]
        fp, lp = med(idle, "fastspec", "prefill"), med(idle, "llama.cpp", "prefill")
        fd, ld = med(idle, "fastspec", "decode"), med(idle, "llama.cpp", "decode")
        rows.append((m, t, f1(fp), f1(lp), ratio(fp, lp), f1(fd), f1(ld), ratio(fd, ld)))
    out += ["", f"## 1. Prefill of {p0} ids and decode of {a.n_gen} greedy tokens from position {p0} (tok/s)", "",
            table(["model", "threads", "prefill fastspec", "prefill llama.cpp", "ratio fs/llama",
                   "decode fastspec", "decode llama.cpp", "ratio fs/llama"], rows)]

    rows = [(m, t, *agreement(r["idle"])) for (m, t), r in results.items()]
    out += ["", f"Greedy agreement over the first {a.n_gen} generated tokens (last repeat; identical "
            "prefix = tokens before the first difference):", "",
            table(["model", "threads", "identical prefix", "identical positions",
                   "fastspec same every repeat", "llama.cpp same every repeat"], rows)]

    if len(a.positions) > 1:
        rows = []
        for (m, t), r in results.items():
            idle = r["idle"]
            for p in a.positions[1:]:
                fp, lp = med(idle, "fastspec", f"prefill@{p}"), med(idle, "llama.cpp", f"prefill@{p}")
                fd, ld = med(idle, "fastspec", f"decode@{p}"), med(idle, "llama.cpp", f"decode@{p}")
                rows.append((m, t, p, f1(fp), f1(lp), ratio(fp, lp), f1(fd), f1(ld), ratio(fd, ld)))
        out += ["", f"## 2. Long context: prefill of P ids, then decode of {a.n_gen_long} tokens from position P (tok/s)",
                "", table(["model", "threads", "P", "prefill fastspec", "prefill llama.cpp", "ratio",
                           "decode fastspec", "decode llama.cpp", "ratio"], rows)]

    rows = []
    for (m, t), r in results.items():
        for n in a.engines:
            base = med(r["idle"], n, f"T{a.t_costs[0]}")
            cells = []
            for tc in a.t_costs:
                v = med(r["idle"], n, f"T{tc}")
                cells.append(f"{v * 1e3:.2f} ms ({v / base:.2f}x)")
            rows.append((m, t, n, *cells))
    out += ["", f"## 3. One forward of T new tokens at position {p0}, logits for all T rows "
            f"(ms; ratio to T={a.t_costs[0]})", "",
            table(["model", "threads", "engine"] + [f"T={tc}" for tc in a.t_costs], rows)]

    if a.busy:
        rows = []
        for (m, t), r in results.items():
            for n in a.engines:
                idle, busy = med(r["idle"], n, "decode"), med(r["busy"], n, "decode")
                ip, bp = med(r["idle"], n, "prefill"), med(r["busy"], n, "prefill")
                rows.append((m, t, n, f1(idle), f1(busy), f"**{100 * busy / idle:.0f}%**",
                             f1(ip), f1(bp), f"{100 * bp / ip:.0f}%"))
        out += ["", f"## 4. Under load: another process spins on one core (decode {a.n_gen} tokens at {p0}; tok/s)", "",
                table(["model", "threads", "engine", "decode idle", "decode busy", "busy % of idle",
                       "prefill idle", "prefill busy", "busy % of idle"], rows)]

    if rss_rows:
        rows = []
        for r in rss_rows:
            if "error" in r:
                rows.append((r["model"], r["engine"], r["context"], r["error"], "", "", "", ""))
                continue
            mib = lambda k: f"{r[k] / 1024:.0f}" if r.get(k) is not None else "?"  # noqa: E731
            rows.append((r["model"], r["engine"], r["context"], f"**{mib('peak_kb')}**", mib("baseline_kb"),
                         mib("after_load_kb"), mib("rss_anon_kb"), mib("rss_file_kb")))
        out += ["", f"## 5. Peak RSS of a fresh process (MiB): load with context C, prefill {p0} ids, decode "
                f"{a.rss_decode} tokens, {max(a.threads)} threads", "",
                "Peak = the child's VmHWM; baseline = peak after imports, before loading; after load = peak "
                "after loading; RssAnon/RssFile = current at the end (file = mapped model pages).", "",
                table(["model", "engine", "context C", "peak RSS", "baseline", "after load", "RssAnon end",
                       "RssFile end"], rows)]
    return "\n".join(out) + "\n"


# ---- main -----------------------------------------------------------------------------------------

def int_list(s: str):
    return [int(x) for x in s.split(",") if x.strip()]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--models", default=DEFAULT_MODELS, help="comma list of known names or GGUF paths")
    ap.add_argument("--threads", type=int_list, default=[1, 2], help="comma list (default 1,2)")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma list of fastspec,llama.cpp")
    ap.add_argument("--repeats", type=int, default=None, help="default 5 (--quick: 1)")
    ap.add_argument("--positions", type=int_list, default=[256, 2048],
                    help="first: prompt length for prefill/decode/T-costs; others: long-context decode")
    ap.add_argument("--n-gen", type=int, default=None, help="decode tokens at the first position (128; quick 16)")
    ap.add_argument("--n-gen-long", type=int, default=None, help="decode tokens at later positions (64; quick 8)")
    ap.add_argument("--t-costs", type=int_list, default=[1, 2, 4, 8, 16])
    ap.add_argument("--t-inner", type=int, default=3, help="forwards per T per repeat")
    ap.add_argument("--rss-contexts", type=int_list, default=[2048, 8192],
                    help="contexts for the RSS children (capped at the model's maximum)")
    ap.add_argument("--rss-decode", type=int, default=None, help="decode tokens in an RSS child (32; quick 4)")
    ap.add_argument("--fastspec-opt", action="append", default=[], metavar="KEY=VALUE",
                    help="set a field of fastspec EngineOptions (repeatable)")
    ap.add_argument("--llama-opt", action="append", default=[], metavar="KEY=VALUE",
                    help="set a field of llama_context_params (repeatable), e.g. swa_full=false")
    ap.add_argument("--llama-model-opt", action="append", default=[], metavar="KEY=VALUE",
                    help="set a field of llama_model_params (repeatable), e.g. use_extra_bufts=false where "
                         "llama.cpp's AMX buffer type crashes on batches (it also turns off its CPU_REPACK)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 repeat, few tokens")
    ap.add_argument("--skip-busy", action="store_true")
    ap.add_argument("--busy", action="store_true", help="(default) measure decode under load too")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--out", help="also write the report to this file")
    ap.add_argument("--verbose", action="store_true", help="let llama.cpp log")
    ap.add_argument("--rss-child", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    q = a.quick
    a.repeats = a.repeats or (1 if q else 5)
    a.n_gen = a.n_gen or (16 if q else 128)
    a.n_gen_long = a.n_gen_long or (8 if q else 64)
    a.rss_decode = a.rss_decode or (4 if q else 32)
    a.busy = not a.skip_busy
    a.engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    bad = [e for e in a.engines if e not in ENGINES]
    if bad:
        ap.error(f"unknown engines {bad}; choose from {ENGINES}")
    a.fastspec_opts, a.llama_opts = parse_opts(a.fastspec_opt), parse_opts(a.llama_opt)
    a.llama_model_opts = parse_opts(a.llama_model_opt)
    a.models = [m.strip() for m in a.models.split(",") if m.strip()]
    return a


def prompt_ids(path: str, n: int, a) -> tuple:
    """n ids of TEXT (repeated as needed), tokenized by llama.cpp when it runs (else by fastspec);
    the other tokenizer is checked against them."""
    import fastspec
    tok = fastspec.Tokenizer.from_model(path)
    reps = 1
    while True:
        text = TEXT * reps
        fs = tok.encode(text)
        if len(fs) >= n + 64:  # margin: the two tokenizers may differ a little
            break
        reps = reps * 2
    if "llama.cpp" in a.engines:
        ids = llama_tokenize(path, text, a.verbose)
        diff = next((i for i, (x, y) in enumerate(zip(ids, fs)) if x != y), None)
        if diff is None and len(ids) == len(fs):
            note = "fastspec.Tokenizer gives the same ids"
        else:
            note = (f"fastspec.Tokenizer DIFFERS (first at id {diff}, lengths {len(fs)} vs {len(ids)}); "
                    "llama.cpp's ids are used for both")
        src = "llama.cpp llama_tokenize(add_special=True)"
    else:
        ids, note, src = fs, "llama.cpp not run", "fastspec.Tokenizer.encode"
    if len(ids) < n:
        raise RuntimeError(f"only {len(ids)} ids")
    return ids[:n], f"{n} ids of a fixed English text (x{reps}), tokenized by {src}; {note}"


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.rss_child:
        rss_child(a.rss_child)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks (busy spinner)

    import fastspec
    meta = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "loadavg": ", ".join(f"{x:.2f}" for x in os.getloadavg()), "prompts": {},
            "fastspec_version": fastspec.__version__, "fastspec_core": fastspec._core.__file__}
    if "llama.cpp" in a.engines:
        ll = llama_lib(a.verbose)
        meta["llama_version"] = ll.__version__
        meta["llama_sysinfo"] = ll.llama_print_system_info().decode().strip(" |")

    results, rss_rows = {}, []
    need = max(a.positions) + max(a.t_costs)
    for m in a.models:
        path = fastspec.models.path(m, quiet=True) if not os.path.exists(m) else m
        ids, meta["prompts"][m] = prompt_ids(path, need, a)
        log(f"{m}: {path}")
        for t in a.threads:
            log(f" threads {t}")
            results[(m, t)] = bench_config(path, t, ids, a)
        if not a.skip_rss:
            rss_rows += measure_rss(m, path, ids, a)

    text = report(a, meta, results, rss_rows)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
