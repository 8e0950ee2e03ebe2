"""The only code that talks to the Kubernetes API: client, patches, events, pod proxy."""
