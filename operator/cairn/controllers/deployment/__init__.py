"""The ModelDeployment controller: resolve the version, run its Deployments and Service."""
