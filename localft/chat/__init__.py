"""Chat: the streaming session, the sandboxed template renderer, feedback."""
