"""gnt — a network toolbox for the people who run Linux and Kubernetes nodes."""

__version__ = "0.1.0"
