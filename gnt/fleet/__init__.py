"""gnt on a fleet: the stream envelope every `--json` stream starts with, and `gnt merge`.

Every NDJSON stream gnt writes opens with one `meta` object (`envelope.StreamMeta`): the
schema version, gnt's version, the command and its command line, the node's host name and
boot id, and when the run started. `merge.merge_streams` reads many nodes' streams (files,
directories, or several streams concatenated on stdin), splits them at their `meta` objects
and judges each node by the command's own result objects (`verdicts.py`).
"""
