"""SavedModel writers: raw-text serving signatures, the in-graph beam search, and `to_savedmodel`
for any Keras model."""
