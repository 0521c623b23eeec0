"""Text formatters, one module per tool, each in the format operators already know."""
