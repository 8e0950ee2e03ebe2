"""The ContinuousTraining controller: triggers, the runs they start, and their history."""
