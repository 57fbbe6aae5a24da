"""Data pipelines, task jobs and the keras-seq CLI."""
