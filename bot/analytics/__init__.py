"""Conversation analytics fed by Rasa's event broker.

Rasa publishes every new tracker event to RabbitMQ (``broker.SpoolingPikaEventBroker``: Rasa's
PikaEventBroker with a durable local spool, so a RabbitMQ outage neither delays a reply nor loses an
event); ``consumer`` reduces them to ``AnalyticsTurn`` rows (``ingest``) in the project's database; the desk
statistics and the review queue read those rows (``read``, functions taking a session), never the tracker
store's layout.
"""
