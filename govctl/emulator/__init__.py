"""The loopback cloud: real Google gRPC protocols served on 127.0.0.1."""
