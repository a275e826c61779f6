"""The GraphQL layer: Strawberry types, resolvers, loaders, permissions, context and schema.

It knows nothing of HTTP routing and holds no SQL: resolvers call `models`.
"""
