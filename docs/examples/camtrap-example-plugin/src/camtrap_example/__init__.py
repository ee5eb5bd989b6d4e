"""A worked example of a third-party camtrap plugin (see docs/plugins.md)."""
