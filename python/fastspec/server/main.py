"""Building and running the server: `fastspec serve` and, for tests and scripts, `ServerThread`.

    state = build_state("smollm2-135m-instruct", draft="ngram", parallel=16)
    with ServerThread(state, port=0) as srv:        # uvicorn in a thread, 127.0.0.1, a free port
        print(srv.base_url)                          # http://127.0.0.1:PORT/v1
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Optional

from .app import ServerState, create_app

log = logging.getLogger("fastspec.server")


def build_state(model: str, *, draft: Optional[str] = None, parallel: int = 16, context: int = 4096,
                threads: Optional[int] = None, max_queue: int = 64, prefix_cache_mb: int = 256,
                spec_backoff: bool = True, log_format: str = "text", k: Optional[int] = None,
                tree_nodes: int = 0, lookup_min: int = 0, engine=None) -> ServerState:
    """Loads the model (fastspec.Engine) and starts its scheduler. `engine`: an already loaded
    fastspec.Engine to serve instead (its scheduler is new). tree_nodes, lookup_min: as
    fastspec.Engine's (token trees; prompt lookup before a draft model or head). spec_backoff: greedy requests' draft
    lengths shrink as the batch fills (Scheduler.draft_cap); sampled requests keep theirs, because
    a seed's text depends on the draft lengths and must not change with the load."""
    from .. import _core, models
    from ..engine import Engine

    eng = engine or Engine(model, draft=draft, k=k, threads=threads, context=context, tree_nodes=tree_nodes,
                           lookup_min=lookup_min)
    opts = _core.SchedulerOptions()
    opts.max_sequences = parallel
    opts.max_queue = max_queue
    opts.prefix_cache_mb = prefix_cache_mb
    opts.spec_backoff = spec_backoff
    sched = _core.Scheduler(eng._core, opts)
    known = {e.name for e in models.list_models()}
    name = model if model in known else os.path.basename(os.fspath(model))
    aliases = [os.fspath(model), os.fspath(eng.path), os.path.basename(eng.path),
               os.path.splitext(os.path.basename(eng.path))[0]]
    state = ServerState(scheduler=sched, tokenizer=eng.tokenizer, context=eng.context, model_name=name,
                        aliases=aliases, log_format=log_format, thread_slots=parallel + max_queue + 32)
    state.engine = eng  # keeps the engine alive as long as the scheduler
    return state


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerThread:
    """uvicorn serving `state` from a daemon thread; a context manager (stops and closes on exit)."""

    def __init__(self, state: ServerState, host: str = "127.0.0.1", port: int = 0, close_scheduler: bool = True):
        import uvicorn

        self.state, self.host = state, host
        self.port = port or free_port(host)
        self.close_scheduler = close_scheduler
        config = uvicorn.Config(create_app(state), host=host, port=self.port, log_config=None, access_log=False,
                                lifespan="off", timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="fastspec-serve", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self, timeout: float = 30.0) -> "ServerThread":
        self.thread.start()
        t0 = time.monotonic()
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() - t0 > timeout:
                raise RuntimeError(f"the server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        if self.close_scheduler:
            self.state.scheduler.close()

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(model: str, *, host: str = "127.0.0.1", port: int = 8000, log_format: str = "text", **kw) -> int:
    """`fastspec serve`: loads the model, serves until interrupted."""
    import uvicorn

    from .logs import setup_logging

    setup_logging(log_format)
    t0 = time.perf_counter()
    state = build_state(model, log_format=log_format, **kw)
    log.info("loaded %s in %.2f s: context %d, %d slots, queue %d, prefix cache %d MB, draft %s",
             state.model_name, time.perf_counter() - t0, state.context, kw.get("parallel", 16),
             kw.get("max_queue", 64), kw.get("prefix_cache_mb", 256), kw.get("draft") or "none")
    log.info("serving on http://%s:%d/v1 (chat/completions, completions, models), /health, /metrics", host, port)
    try:
        uvicorn.run(create_app(state), host=host, port=port, log_config=None, access_log=False, lifespan="off",
                    timeout_graceful_shutdown=5)
    finally:
        state.scheduler.close()
    return 0
