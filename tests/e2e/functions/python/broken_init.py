# Fails while its module loads: an init error.
raise ImportError("cannot load the model")


def handler(event, context):
    return "never"
