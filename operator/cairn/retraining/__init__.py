"""Continuous training: schedules, triggers and what they decide; pure and cluster-free."""
