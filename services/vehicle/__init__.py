"""Mock vehicle registry (车管所): the VehicleRegistry contract."""
