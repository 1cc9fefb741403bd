"""The project's Rasa NLU components (loaded by Rasa from config.yml) and their helpers."""
import sys

# Rasa imports this package when it loads the model: the place to reach every Rasa server process, however it
# was started. Elsewhere (the action server imports helpers from here) Rasa's core is not loaded and is left so.
if "rasa.core.processor" in sys.modules:
    from bot import rasa_speedups

    rasa_speedups.install()
