"""ct-infer's built-in plugins, registered through the ``camtrap.plugins`` entry point."""
