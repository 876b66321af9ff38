"""One proto -> JSON mapping per platform resource; the seed surfaces are tables over them.

Each module here holds the canonical fields of one resource, named as in the protos (snake_case),
built once from the gRPC message. A surface (seed 000's camelCase REST, the snake_case function
calls, JSON-RPC, webhooks, the CLI) renders them through a ``FieldTable`` (tables.py): renames,
key case and the subset it shows; it never reads the proto message itself. So a new field reaches
every surface at once, and two surfaces cannot drift apart on what an event or a job holds.
"""
