"""Mock real-estate registry (不动产登记): the RealEstateRegistry contract."""
