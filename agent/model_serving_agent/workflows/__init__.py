"""Batch scoring workflows: declared by id, executed over REST (the user guide's
POST /api/v1/workflow/execute), each run a scoring subprocess streaming the input in batches."""
