"""talon-stream: Kafka shop events to Talon.One, effects back to Kafka."""
