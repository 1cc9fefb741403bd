"""The answering layer: pure functions from (knowledge snapshot, the patron's ask with carried-over
context, now) to replies. Rasa actions and the editor's preview are thin adapters over it."""
