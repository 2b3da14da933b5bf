"""The Integration API operations, without HTTP: they change the store and answer bodies."""
