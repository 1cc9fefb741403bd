"""The action server: answers from the knowledge store, service forms, tickets and handoff."""
from bot.privacy import install_masking_filter

# rasa_sdk configures logging before it imports this package, so the filter sees the final handlers
install_masking_filter()
