"""The action server, locked down: rasa_sdk's app on loopback, callers must send the shared secret, and
ticket-raising actions are rate-limited per patron.

    python -m bot.services.action_server --port 5055        # secret: XINGHE_ACTION_TOKEN

- Listens on ``ACTIONS_HOST`` (default ``127.0.0.1``); widen only by setting it.
- Every request but ``GET /health`` must carry ``X-Xinghe-Action-Token: <XINGHE_ACTION_TOKEN>`` (Rasa sends
  it from ``endpoints.yml``'s ``action_endpoint.headers``, which ``bot.runtime_config`` writes as
  ``${XINGHE_ACTION_TOKEN}`` so the secret stays in the environment). Without a token set the server
  refuses to start.
- No CORS: browsers have no business here.
- Per patron (``sender_id``) limits on actions that raise tickets, hand off or sound the emergency alarm
  (``bot.services.ratelimit``); beyond them the action is not run and the patron gets a clear reply.
"""
from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import zlib
from typing import Any, Dict, Optional

from sanic import response
from sanic.request import Request

from bot.privacy import install_masking_filter
from bot.services.ratelimit import Limiter, default_limiter
from bot.services.refusals import refusal

log = logging.getLogger(__name__)

HEADER = "X-Xinghe-Action-Token"
TOKEN_ENV = "XINGHE_ACTION_TOKEN"

#: action name → (rate-limit kind, refusal text code)
LIMITED_ACTIONS: Dict[str, tuple] = {
    "action_emergency": ("emergency_sender", "too_many_emergencies"),
    "action_request_human": ("handoff_sender", "too_many_handoffs"),
    "action_complain": ("ticket_sender", "too_many_tickets"),
    "action_submit_complaint": ("ticket_sender", "too_many_tickets"),
    "action_submit_lost_item": ("ticket_sender", "too_many_tickets"),
    "action_submit_group_booking": ("ticket_sender", "too_many_tickets"),
    "action_submit_order_problem": ("ticket_sender", "too_many_tickets"),
    "action_submit_refund": ("ticket_sender", "too_many_tickets"),
    "action_feedback": ("ticket_sender", "too_many_tickets"),
}


def _action_call(request: Request) -> Optional[Dict[str, Any]]:
    try:
        body = request.body or b""
        if request.headers.get("Content-Encoding") == "deflate":
            body = zlib.decompress(body)
        call = json.loads(body)
        return call if isinstance(call, dict) else None
    except (ValueError, zlib.error):
        return None


def create_app(token: str, package: str = "actions", limiter: Optional[Limiter] = None):
    """rasa_sdk's Sanic app with the token check and the per-patron limits in front."""
    if not token:
        raise SystemExit(f"{TOKEN_ENV} is not set: the action server does not run without caller authentication")
    from rasa_sdk.endpoint import create_app as sdk_app

    app = sdk_app(package, cors_origins="")
    limits = limiter

    @app.middleware("request")
    async def guard(request: Request):
        if request.path == "/health" and request.method in ("GET", "HEAD"):
            return None
        if not hmac.compare_digest(request.headers.get(HEADER, "").encode(), token.encode()):
            return response.json({"error": "unauthorized"}, status=401)
        if request.path != "/webhook" or request.method != "POST":
            return None
        call = _action_call(request)
        if call is None:
            return response.json({"error": "Invalid body request"}, status=400)
        name = str(call.get("next_action") or "")
        if name in LIMITED_ACTIONS:
            kind, text = LIMITED_ACTIONS[name]
            sender = str(call.get("sender_id") or "")
            if not (limits or default_limiter()).hit(kind, sender):
                log.warning("rate limit %s: %s refused for sender %s", kind, name, sender[:8])
                return response.json({"events": [], "responses": [{"text": refusal(text)}]})
        return None

    return app


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.services.action_server", description=__doc__.split("\n")[0])
    parser.add_argument("--actions", default="actions")
    parser.add_argument("--host", default=os.environ.get("ACTIONS_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ACTIONS_PORT", "5055")))
    args = parser.parse_args(argv)
    from rasa_sdk import utils

    utils.configure_colored_logging(os.environ.get("LOG_LEVEL", "INFO"))
    utils.update_sanic_log_level()
    install_masking_filter()
    app = create_app(os.environ.get(TOKEN_ENV, ""), args.actions)
    log.info("action server on http://%s:%d (callers authenticated by %s)", args.host, args.port, HEADER)
    app.run(args.host, args.port, workers=1, access_log=False)


if __name__ == "__main__":
    main()
