"""What every mock agency (bank, vehicle registry, real-estate registry) shares."""
