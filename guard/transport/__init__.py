"""gRPC transport: the only package that imports generated protobuf code."""
