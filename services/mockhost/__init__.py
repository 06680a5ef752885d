"""Many mock banks in one process, each on its own port with its own identity and data, for wide fan-out."""
