"""Speed-ups of library hot spots in the Rasa server process, one small module each, installed by
``bot.rasa_speedups.install`` (which lists them and how to switch each off). Each changes how a result is
computed, never the result; each has a test in tests/test_rasa_speedups.py that compares it with the
library's own code."""
