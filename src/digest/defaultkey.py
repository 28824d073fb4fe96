"""The default newsletter's key, in a module of its own: the store reads it, and
commands such as ``digest status`` start without loading the settings' models."""

DEFAULT_KEY = "main"
