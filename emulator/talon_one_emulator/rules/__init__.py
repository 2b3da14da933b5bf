"""The rule engine: facts in, Talon.One effects out (conditions, effects, discounts, rollbacks)."""
