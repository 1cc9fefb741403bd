"""The process layout of one machine, written as a supervisord config and (for a cluster) an nginx config.

``make run``: one action server, one Rasa server, the web app, each restarted by supervisord when it dies.
``make run-cluster``: N Rasa servers and M action servers behind nginx, the web app, nginx itself and a health
watcher, all under one supervisord. Nothing secret is written: every process inherits supervisord's environment
(RASA_TOKEN, XINGHE_ACTION_TOKEN, … exported by the run script); the files hold paths, ports and instance tags.

nginx listens on three loopback ports (``Layout.ports``):

- ``public`` (8000): what a cinema exposes through TLS — the web app (chat, widget, desk, editor, its socket.io
  relay) and the WeChat webhook, balanced over the Rasa instances;
- ``rasa`` (5000): Rasa for the web app (desk HTTP API calls, the chat relay's socket.io) and local tools
  (REST); any instance serves any conversation (shared tracker and lock store), except engine.io long-polling,
  which goes to the instance named in its session id (``bot.channels.socket_cluster``);
- ``actions`` (5050): the action servers, for the Rasa instances.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Layout:
    var: Path
    model: str
    rasa: int = 1
    actions: int = 1
    nginx: bool = False
    ports: Dict[str, int] = field(default_factory=dict)
    python: str = str(ROOT / ".venv" / "bin" / "python")
    web_python: str = str(ROOT / ".venv-web" / "bin" / "python")
    nginx_bin: str = "/usr/sbin/nginx"
    app: bool = True

    def port(self, name: str) -> int:
        defaults = {"rasa0": 5005, "actions0": 5055, "app": 8080, "public": 8000, "rasa": 5000, "actions": 5050}
        return int(self.ports.get(name, defaults[name]))

    def rasa_ports(self) -> List[int]:
        return [self.port("rasa0") + i for i in range(self.rasa)]

    def action_ports(self) -> List[int]:
        return [self.port("actions0") + i for i in range(self.actions)]

    @property
    def rasa_url(self) -> str:
        """Where the web app and local tools reach Rasa."""
        return f"http://127.0.0.1:{self.port('rasa') if self.nginx else self.rasa_ports()[0]}"

    @property
    def action_url(self) -> str:
        return f"http://127.0.0.1:{self.port('actions') if self.nginx else self.action_ports()[0]}/webhook"

    # -- services ----------------------------------------------------------------------------------------
    def services(self) -> List[Dict[str, object]]:
        """name, kind, command, environment, health URL of every supervised process."""
        out: List[Dict[str, object]] = []
        for i, port in enumerate(self.action_ports(), 1):
            out.append({"name": f"actions-{i}", "kind": "actions", "env": {"ACTIONS_PORT": str(port)},
                        "command": [self.python, "-m", "bot.services.action_server", "--actions", "actions",
                                    "--port", str(port)],
                        "health": f"http://127.0.0.1:{port}/health"})
        for i, port in enumerate(self.rasa_ports(), 1):
            env = {"RASA_PORT": str(port)}
            if self.rasa > 1 or self.nginx:
                env["XINGHE_INSTANCE"] = f"r{i}"
            out.append({"name": f"rasa-{i}", "kind": "rasa", "env": env,
                        "command": [self.python, "-m", "bot.services.rasa_server", "--model", self.model,
                                    "--port", str(port), "--credentials", str(self.var / "credentials.yml"),
                                    "--endpoints", str(self.var / "endpoints.yml")],
                        "health": f"http://127.0.0.1:{port}/"})
        if os.environ.get("EVENT_BROKER", "pika") != "none":
            # conversation events from RabbitMQ into the statistics tables (bot.analytics): one consumer for
            # all instances, its own process so the statistics never slow a reply (it logs; no health URL)
            out.append({"name": "events", "kind": "events", "env": {},
                        "command": [self.python, "-m", "bot.analytics.consumer"], "health": None})
        if self.app:
            port = self.port("app")
            out.append({"name": "app", "kind": "app", "env": {"DESK_PORT": str(port), "RASA_URL": self.rasa_url},
                        "command": [self.web_python, "-m", "bot.services.app", "--port", str(port)],
                        "health": f"http://127.0.0.1:{port}/healthz"})
        if self.nginx:
            out.append({"name": "nginx", "kind": "nginx", "env": {},
                        "command": [self.nginx_bin, "-c", str(self.var / "nginx" / "nginx.conf"),
                                    "-p", str(self.var / "nginx")],
                        "health": f"http://127.0.0.1:{self.port('rasa')}/nginx-health"})
        return out

    # -- supervisord ---------------------------------------------------------------------------------
    def supervisord_conf(self) -> str:
        log = self.var / "log"
        lines = [
            "; written by bot.deploy (scripts/run.sh, scripts/run-cluster.sh); no secrets: the processes",
            "; inherit supervisord's environment.",
            "[unix_http_server]",
            f"file={self.var / 'supervisor.sock'}",
            "chmod=0700",
            "",
            "[supervisord]",
            "nodaemon=true",
            f"logfile={log / 'supervisord.log'}",
            "logfile_maxbytes=10MB",
            f"pidfile={self.var / 'supervisord.pid'}",
            f"childlogdir={log}",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{self.var / 'supervisor.sock'}",
            "",
        ]
        for svc in self.services() + [self._watcher()]:
            env = ",".join(f'{k}="{v}"' for k, v in sorted(dict(svc["env"]).items()))  # type: ignore[arg-type]
            lines += [
                f"[program:{svc['name']}]",
                "command=" + " ".join(shlex.quote(str(c)) for c in svc["command"]).replace("%", "%%"),  # type: ignore[union-attr]
                f"directory={ROOT}",
                *([f"environment={env}"] if env else []),
                "autostart=true",
                # restarted whenever it exits, however it exits; a process that dies within startsecs of
                # being started counts as a failed start (FATAL after startretries, logged)
                "autorestart=true",
                "startsecs=5",
                "startretries=5",
                "stopasgroup=true",
                "killasgroup=true",
                "stopwaitsecs=20",
                "redirect_stderr=true",
                f"stdout_logfile={log / (str(svc['name']) + '.log')}",
                "stdout_logfile_maxbytes=20MB",
                "stdout_logfile_backups=3",
                "",
            ]
        return "\n".join(lines)

    def _watcher(self) -> Dict[str, object]:
        return {"name": "healthwatch", "env": {},
                "command": [self.python, "-m", "bot.deploy.health", "--watch", "--layout",
                            str(self.var / "layout.json")]}

    # -- nginx -----------------------------------------------------------------------------------------
    def nginx_conf(self) -> str:
        base = self.var / "nginx"
        tmp = base / "tmp"
        log = self.var / "log"
        rasa = self.rasa_ports()
        user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
        sticky_upstreams = "\n".join(
            f"    upstream rasa_r{i} {{ server 127.0.0.1:{p}; }}" for i, p in enumerate(rasa, 1))
        sticky_map = "\n".join(f'        "~^r{i}-" rasa_r{i};' for i in range(1, len(rasa) + 1))
        servers = lambda ports: "\n".join(  # noqa: E731
            f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in ports)
        return f"""# written by bot.deploy.layout for this machine (make run-cluster); see README, Production.
{user}worker_processes 1;            # one per core in production (auto); here the cores serve Rasa
daemon off;                   # supervisord runs and restarts it
pid {base / 'nginx.pid'};
error_log {log / 'nginx-error.log'} warn;

events {{ worker_connections 4096; }}

http {{
    access_log off;           # request lines carry WeChat signatures and sender ids; Rasa logs masked
    client_body_temp_path {tmp / 'body'};
    proxy_temp_path {tmp / 'proxy'};
    fastcgi_temp_path {tmp / 'fastcgi'};
    uwsgi_temp_path {tmp / 'uwsgi'};
    scgi_temp_path {tmp / 'scgi'};
    client_max_body_size 1m;
    # bodies and answers stay in memory: Rasa's action calls carry a tracker (tens of kB), and temp files
    # would need a directory the workers (nobody, when started as root) can write
    client_body_buffer_size 1m;
    proxy_buffer_size 16k;
    proxy_buffers 16 16k;
    proxy_max_temp_file_size 0;
    server_tokens off;
    proxy_http_version 1.1;
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;

    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}

    # Any Rasa instance can serve any conversation: trackers are in PostgreSQL and the per-conversation
    # lock in Redis. A dead or still-loading instance refuses connections; nginx then tries the next one
    # (before anything was sent, so even a POST is safe to retry) and leaves it out for 5 s.
    upstream rasa {{
{servers(rasa)}
    }}
    # Web chat stickiness. An engine.io long-polling session exists in one process only, and the client
    # sends its id (?sid=) with every poll; ids start with the instance tag (r1-, r2-…), so each poll goes
    # back to the instance that holds it. Cookies or ip_hash would not do: every browser reaches Rasa
    # through the web app's relay, one address, and pages embedding the widget send no cookie. A handshake
    # (no sid yet) or a WebSocket (one connection for the whole session) goes to any live instance; replies
    # produced elsewhere reach the socket through Redis (SOCKETIO_MANAGER=redis).
{sticky_upstreams}
    map $arg_sid $rasa_socket {{
        default rasa;
{sticky_map}
    }}
    upstream actions {{
{servers(self.action_ports())}
    }}
    upstream app {{ server 127.0.0.1:{self.port('app')}; }}

    # Rasa for the web app and local tools (loopback only).
    server {{
        listen 127.0.0.1:{self.port('rasa')};
        location = /nginx-health {{ return 200 "ok\\n"; }}
        location /socket.io/ {{
            proxy_pass http://$rasa_socket;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 90s;       # long-polls are held up to the ping interval (25 s)
            proxy_buffering off;
        }}
        location / {{
            proxy_pass http://rasa;
            proxy_set_header Connection "";
            proxy_read_timeout 120s;
        }}
    }}

    # Action servers for the Rasa instances (loopback only).
    server {{
        listen 127.0.0.1:{self.port('actions')};
        location / {{
            proxy_pass http://actions;
            proxy_set_header Connection "";
            proxy_read_timeout 60s;
        }}
    }}

    # What a cinema publishes (behind TLS: README, Production): web chat, widget, desk, editor, WeChat.
    server {{
        listen 127.0.0.1:{self.port('public')};
        location = /webhooks/wechat/webhook {{
            proxy_pass http://rasa;       # any instance: retries are de-duplicated through Redis
            proxy_set_header Connection "";
            proxy_read_timeout 10s;       # WeChat gives up after 5 s; the channel answers within 4 s
        }}
        location /webchat/socket.io/ {{
            proxy_pass http://app;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 90s;
            proxy_buffering off;
        }}
        location /desk/api/events {{        # server-sent events
            proxy_pass http://app;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
        location / {{
            proxy_pass http://app;
            proxy_set_header Connection "";
            proxy_read_timeout 60s;
        }}
    }}
}}
"""

    # -- files -----------------------------------------------------------------------------------------
    def write(self) -> Path:
        """Write supervisord.conf (and nginx.conf, layout.json) under ``var``; returns supervisord.conf."""
        import json

        (self.var / "log").mkdir(parents=True, exist_ok=True)
        conf = self.var / "supervisord.conf"
        conf.write_text(self.supervisord_conf(), encoding="utf-8")
        (self.var / "layout.json").write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")
        if self.nginx:
            base = self.var / "nginx"
            for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
                (base / sub).mkdir(parents=True, exist_ok=True)
                if os.geteuid() == 0:  # workers run as nobody and buffer large bodies here
                    import pwd

                    os.chown(base / sub, pwd.getpwnam("nobody").pw_uid, -1)
            (base / "nginx.conf").write_text(self.nginx_conf(), encoding="utf-8")
        return conf

    def to_json(self) -> Dict[str, object]:
        return {"socket": str(self.var / "supervisor.sock"),
                "services": [{"name": s["name"], "kind": s["kind"], "health": s["health"]}
                             for s in self.services()]}


def from_env(var: Path, model: str, *, cluster: bool) -> Layout:
    """The layout the run scripts start: ports and counts from the environment (README, Configuration)."""
    env = os.environ
    ports = {"rasa0": int(env.get("RASA_PORT", "5005")), "actions0": int(env.get("ACTIONS_PORT", "5055")),
             "app": int(env.get("DESK_PORT", "8080"))}
    if cluster:
        ports.update(public=int(env.get("NGINX_PORT", "8000")), rasa=int(env.get("RASA_LB_PORT", "5000")),
                     actions=int(env.get("ACTIONS_LB_PORT", "5050")))
        return Layout(var, model, rasa=int(env.get("RASA_INSTANCES", "2")),
                      actions=int(env.get("ACTION_INSTANCES", "2")), nginx=True, ports=ports)
    return Layout(var, model, ports=ports)


def main(argv: Optional[List[str]] = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="write var/supervisord.conf (and nginx.conf) for a run script")
    parser.add_argument("--var", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--print", choices=("rasa-url", "action-url"), help="print a URL of the layout")
    args = parser.parse_args(argv)
    layout = from_env(Path(args.var), args.model, cluster=args.cluster)
    if args.print == "rasa-url":
        print(layout.rasa_url)
        return
    if args.print == "action-url":
        print(layout.action_url)
        return
    print(layout.write())


if __name__ == "__main__":
    main()
