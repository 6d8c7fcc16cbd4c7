"""The `tlsrpt` application: the command line and the service that wires the receivers."""
