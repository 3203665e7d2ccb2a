# Fails while the runtime loads it (before any invocation).
raise IOError, "cannot load the model"
