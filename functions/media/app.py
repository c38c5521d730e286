def handler(event, context):
    raise NotImplementedError
