"""The REST contract: check the body, build one GraphQL operation, run it in-process, reshape.

It never touches SQL and never calls its own server over HTTP.
"""
