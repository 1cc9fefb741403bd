"""Knowledge editor pages of the web app (role ``editor``; supervisors too), split by job:

- ``forms``: overview, record lists and the one generic edit form of records (films, prices, FAQs …) and
  document fields (parking fee, de-escalation wording …), inputs derived from the pydantic schema;
- ``showtimes``: ``showtimes.csv`` replaced by an uploaded CSV, previewed as added/removed rows;
- ``versions``: the audit log, published versions, diffs and rollback;
- ``fields`` (schema → inputs → values), ``rasa`` (the answer preview), ``common`` (state under a typed app
  key, rendering, helpers), ``wording`` (Chinese labels);
- ``routes``: every route in one place; ``setup_editor(app)`` is called by ``bot.services.app.create_app``.

Every change goes the same way: the editor changes a form, **previews** it (the complete file set is
validated, the changes are listed, and the bot's answer to a sample question is computed from the draft),
then **publishes** it (``bot.kb.editing.publish_edit``), with an audit row.
"""
from bot.services.editor.routes import setup_editor

__all__ = ["setup_editor"]
