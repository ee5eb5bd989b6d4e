"""ct-io: file formats, data sources and the plugin registry of the camtrap toolkit."""

from ct_io.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]
