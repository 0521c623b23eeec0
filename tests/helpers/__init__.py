"""Test helpers shared by every tool's tests (netns topologies, running gnt)."""
