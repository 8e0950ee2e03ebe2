"""The trainer SDK that runs inside training pods and reports through the termination message."""
