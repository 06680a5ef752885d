"""Mock bank (also online payment platforms and securities firms): the Bank contract."""
