"""One module per ``vidrestore`` subcommand: ``add_arguments(parser)`` and ``run(args)``."""
