"""`fastspec serve`: an OpenAI-compatible HTTP server (Starlette + uvicorn, the `fastspec[server]`
extra) over the continuous-batching scheduler (fastspec._core.Scheduler).

    protocol.py  request bodies: parsing and checks (OpenAI-style 400s)
    generate.py  one generation: scheduler Request -> text pieces, stop strings, logprobs, usage
    app.py       the Starlette app: endpoints, SSE, disconnects, errors
    metrics.py   Prometheus text for /metrics
    logs.py      text / JSON log lines
    main.py      build_state, ServerThread (tests), serve (the CLI)
"""
from .app import ServerState, create_app
from .main import ServerThread, build_state, serve

__all__ = ["ServerState", "ServerThread", "build_state", "create_app", "serve"]
