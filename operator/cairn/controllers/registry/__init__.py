"""The Model and ModelVersion controllers: gates, approval and alias resolution."""
