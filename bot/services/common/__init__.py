"""What the desk, the web chat and the editor share: the Rasa client and the web helpers."""
