"""One builder module per pipeline step; each takes a StepContext and returns SDK step objects."""
