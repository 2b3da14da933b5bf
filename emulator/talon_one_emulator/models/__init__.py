"""Request bodies of the emulated operations, as strict pydantic models mirroring the SDK's."""
