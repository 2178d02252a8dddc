"""Schemathesis hooks for the API contract test (tests/tests/contract.rs).

tus sends an upload's bytes as `application/offset+octet-stream`: raw bytes, sent as
schemathesis sends `application/octet-stream`.
"""

import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
