"""The TrainingRun controller: runs training in a Job and records what came of it."""
