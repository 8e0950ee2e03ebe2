"""Tests of pure logic; they need no cluster."""
