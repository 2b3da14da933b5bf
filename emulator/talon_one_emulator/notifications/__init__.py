"""Talon.One's outbound notifications, as the emulator sends them: strikethrough prices after
a catalog sync, loyalty points added or deducted, coupons created (see docs/emulator.md)."""
