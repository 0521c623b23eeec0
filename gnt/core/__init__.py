"""The shared raw-socket and checksum core. Standard library only: no third-party import here."""
