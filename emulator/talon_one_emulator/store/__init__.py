"""What the emulator remembers: sessions, profiles, ledgers, audiences, catalogs, the log."""
