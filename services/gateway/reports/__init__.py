"""Read-only views for the console and the command centre: the cases a caller may see, a court's figures per day."""
