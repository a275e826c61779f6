"""Storage: tables, the engine, and every SQL statement of the product.

Nothing here imports Strawberry or Starlette; callers above hand in a connection.
"""
