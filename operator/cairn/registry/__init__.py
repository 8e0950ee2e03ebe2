"""Model registry logic: versions, gates, approvals and aliases; pure and cluster-free."""
