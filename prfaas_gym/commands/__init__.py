"""CLI subcommands that do not belong to one library module (``simulate``)."""
