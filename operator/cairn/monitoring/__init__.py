"""Watching models in production: the training data's profile (the baseline every version
carries), the counts a model server keeps of what it is asked and answers, and the tests that
say whether the two differ (drift)."""
