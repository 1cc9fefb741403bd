"""Create the PostgreSQL databases a cluster runs on when they do not exist yet (``make run-cluster``).

    python -m bot.deploy.database URL [URL...]

Only ``postgresql://`` URLs are touched; the schema itself is created by the services (``bot.db`` and Rasa's
SQL tracker store) when they start.
"""
from __future__ import annotations

import sys
from typing import List, Optional


def ensure_database(url: str) -> bool:
    """Create the database of ``url`` if missing; True when it was created."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if not u.drivername.startswith("postgresql") or not u.database:
        return False
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT", future=True)
    try:
        with admin.connect() as conn:
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": u.database}).first():
                return False
            conn.execute(text(f'CREATE DATABASE "{u.database}"'))  # name from our own configuration
            return True
    finally:
        admin.dispose()


def main(argv: Optional[List[str]] = None) -> None:
    for url in dict.fromkeys(argv if argv is not None else sys.argv[1:]):
        if ensure_database(url):
            from sqlalchemy.engine import make_url

            print(f"==> created database {make_url(url).database}")


if __name__ == "__main__":
    main()
