"""Finance HTTP API: one router per resource (parse, authorise, call one use case, shape the response)."""
