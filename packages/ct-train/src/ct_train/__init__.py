"""ct-train: part of the camtrap classifier toolkit."""

__version__ = "0.1.0"
