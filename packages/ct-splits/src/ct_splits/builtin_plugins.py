"""ct-splits's built-in plugins, registered through the ``camtrap.plugins`` entry point."""
