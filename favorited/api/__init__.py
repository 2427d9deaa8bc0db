"""The gRPC edge: authentication, error mapping, proto translation and the servicers."""
