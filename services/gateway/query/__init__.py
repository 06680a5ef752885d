"""The asset query: fan-out to the agencies under one deadline, and checks on what they answer."""
