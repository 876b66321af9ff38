"""The HTTP gateway: one port that serves every REST / JSON-RPC surface of the seeds.

It only translates: validate the HTTP shape, authenticate, call a gRPC service, and render the
answer (or the error) in the shape of the surface that was called. No business logic lives here.
"""
