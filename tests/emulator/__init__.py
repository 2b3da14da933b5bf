"""The emulator's tests: unit tests of talon_one_emulator and its SDK conformance tests."""
