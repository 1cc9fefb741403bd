"""Editors' learning loop: the messages the bot missed, assigned to an intent (training data for the next
training, ``python -m bot.review export``) or to a knowledge facet (a new example phrasing, answered at once)."""
