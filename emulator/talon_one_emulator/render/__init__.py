"""Stored records rendered as Talon.One JSON."""
