"""The local lab: real servers on loopback for the demo and the tests."""
