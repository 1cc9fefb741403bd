"""Start the Rasa server the project's way: loopback by default, the API token from the environment (never on
the command line, where ``ps`` shows it), no CORS unless asked for, and the message gate in front of NLU.

    python -m bot.services.rasa_server --model M --port 5005 --credentials C --endpoints E

- ``RASA_TOKEN`` (required) is the HTTP API token (``?token=`` for local tools) and also the HS256 JWT secret,
  so the desk can authenticate with an ``Authorization: Bearer`` header instead of putting the token in URLs.
- ``RASA_HOST`` (default ``127.0.0.1``) is the listen address; ``XINGHE_RASA_CORS`` the allowed origins
  (default none: the web chat reaches socket.io through the desk app's same-origin relay).
"""
from __future__ import annotations

import argparse
import os
import sys


def rasa_argv(args: argparse.Namespace, token: str) -> list:
    # "--opt=value": a generated token may start with "-", which argparse would take for an option.
    argv = ["rasa", "run", "--model", args.model, "--enable-api", f"--auth-token={token}",
            f"--jwt-secret={token}", "--jwt-method", "HS256", "--interface", args.host, "--port", str(args.port),
            "--credentials", args.credentials, "--endpoints", args.endpoints]
    cors = os.environ.get("XINGHE_RASA_CORS", "").strip()
    if cors:
        argv += ["--cors", *cors.split(",")]
    return argv


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.services.rasa_server", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", default=os.environ.get("RASA_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("RASA_PORT", "5005")))
    parser.add_argument("--credentials", required=True)
    parser.add_argument("--endpoints", required=True)
    args = parser.parse_args(argv)
    token = os.environ.get("RASA_TOKEN", "")
    if len(token) < 16:
        raise SystemExit("RASA_TOKEN must be set (16+ characters): the Rasa HTTP API never runs unauthenticated")

    from bot.privacy import install_masking_filter
    from bot.services import message_gate

    # names this process's event spool (bot.analytics.broker): one per Rasa server, kept across restarts.
    # Not XINGHE_INSTANCE: that one names cluster instances (r1, r2 …) and turns on shared socket/WeChat state.
    os.environ.setdefault("XINGHE_SPOOL_NAME", f"rasa-{args.port}")
    message_gate.install()
    install_masking_filter()
    from bot import rasa_speedups

    rasa_speedups.install()
    # Rasa parses sys.argv; changing it here does not change the process's command line (/proc/PID/cmdline).
    sys.argv = rasa_argv(args, token)
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
